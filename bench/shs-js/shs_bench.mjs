// The TCP figures of build/bench/shs_bench run through the JS reference: secret-handshake 1.1.21
// (whose session is pull-box-stream 1.0.13) over node's net sockets, both ends in this process
// and on its one thread, as shs_bench's *_1thread figure runs them.
//   shs.handshake_tcp  sequential handshakes over TCP loopback (handshakes/s)
//   shs.boxstream_tcp  64 MiB in 4 KiB writes through the box-stream session (MB/s, 10^6 bytes),
//                      timed from the first received chunk to the last, as shs_bench does
//
// Usage: node shs_bench.mjs [--figure handshake_tcp|boxstream] [--n SCALE]
import net from "node:net";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const shs = require("secret-handshake");
const pull = require("pull-stream");
const toPull = require("stream-to-pull-stream");
const chloride = require("chloride");

let figure = "all";
let scale = 1;
for (let i = 2; i < process.argv.length; ++i) {
  if (process.argv[i] === "--figure" && i + 1 < process.argv.length) figure = process.argv[++i];
  else if (process.argv[i] === "--n" && i + 1 < process.argv.length) scale = Number(process.argv[++i]);
  else {
    console.error("usage: node shs_bench.mjs [--figure handshake_tcp|boxstream] [--n SCALE]");
    process.exit(2);
  }
}
const count = n => Math.max(2, Math.floor(n * scale));

function print(bench, n, value, unit) {
  console.log(JSON.stringify({ bench, provider: "shared-key", impl: "js", n,
                               value: Number(value.toFixed(1)), unit }));
}

const appKey = randomBytes(32);
const clientKeys = chloride.crypto_sign_keypair();
const serverKeys = chloride.crypto_sign_keypair();
const timeoutMs = 5000;
const createClient = shs.createClient(clientKeys, appKey, timeoutMs);
const createServer = shs.createServer(serverKeys, (pub, cb) => cb(null, true), appKey, timeoutMs);

// A listening server whose every connection runs the server handshake and hands the secure
// stream to `onSession`.
function listen(onSession) {
  return new Promise(resolve => {
    const server = net.createServer(socket => {
      socket.setNoDelay(true);
      const wire = toPull.duplex(socket);
      const handshake = createServer((err, secure) => {
        if (err) throw err;
        onSession(secure, socket);
      });
      pull(wire, handshake, wire);
    });
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

function dial(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.setNoDelay(true);
      const wire = toPull.duplex(socket);
      const handshake = createClient(serverKeys.publicKey, (err, secure) => {
        if (err) return reject(err);
        resolve({ secure, socket });
      });
      pull(wire, handshake, wire);
    });
    socket.on("error", reject);
  });
}

async function handshakeTcp(n) {
  let served = 0;
  let waiting = null;
  const server = await listen((secure, socket) => {
    ++served;
    socket.destroy();
    if (waiting) waiting();
  });
  const { port } = server.address();
  const start = performance.now();
  for (let i = 0; i < n; ++i) {
    const done = new Promise(resolve => { waiting = resolve; });
    const { socket } = await dial(port);
    // Both ends must finish, as in shs_bench.
    if (served <= i) await done;
    socket.destroy();
  }
  const seconds = (performance.now() - start) / 1000;
  server.close();
  if (served !== n) throw new Error(`served ${served} of ${n}`);
  print("shs.handshake_tcp", n, n / seconds, "handshakes/s");
}

async function boxStreamTcp(frames) {
  const frameBytes = 4096;
  let finished;
  const received = new Promise(resolve => { finished = resolve; });
  const server = await listen((secure, socket) => {
    let bytes = 0;
    let started = null;
    pull(secure, pull.drain(chunk => {
      if (started === null) started = performance.now();
      bytes += chunk.length;
      if (bytes === frames * frameBytes) {
        finished({ seconds: (performance.now() - started) / 1000 });
        socket.destroy();
        return false;
      }
    }));
  });
  const { port } = server.address();
  const { secure, socket } = await dial(port);
  const frame = Buffer.alloc(frameBytes, 0x5a);
  let sent = 0;
  pull(function source(end, cb) {
    if (end) return cb(end);
    if (sent === frames) return cb(true);
    ++sent;
    cb(null, frame);
  }, secure.sink);
  pull(secure.source, pull.drain());
  const { seconds } = await received;
  socket.destroy();
  server.close();
  // The first chunk is not timed: count the others, as shs_bench does.
  print("shs.boxstream_tcp", frames * frameBytes, ((frames - 1) * frameBytes) / seconds / 1e6, "MB/s");
}

const figures = [
  ["handshake_tcp", () => handshakeTcp(count(500))],
  ["boxstream", () => boxStreamTcp(count(16384))],
];
let ran = false;
for (const [name, run] of figures) {
  if (figure !== "all" && figure !== name) continue;
  await run();
  ran = true;
}
if (!ran) {
  console.error(`unknown figure '${figure}'`);
  process.exit(2);
}
process.exit(0);
