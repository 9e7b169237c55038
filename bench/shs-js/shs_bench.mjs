// The TCP figures of build/bench/shs_bench run through the JS reference: secret-handshake 1.1.21
// (whose session is pull-box-stream 1.0.13) over node's net sockets. Each figure runs as
// shs_bench runs it: the plain figures with the server (receiver) in a child process and the
// client (sender) in this one, as shs_bench puts them on two threads; the *_1thread figures with
// both ends in this process, on its one thread.
//   shs.handshake_tcp  sequential handshakes over TCP loopback (handshakes/s)
//   shs.boxstream_tcp  64 MiB in 4 KiB writes through the box-stream session (MB/s, 10^6 bytes),
//                      timed from the first received chunk to the last, as shs_bench does
//
// Usage: node shs_bench.mjs [--figure handshake_tcp|handshake_tcp_1thread|boxstream|
//                                     boxstream_1thread] [--n SCALE]
import net from "node:net";
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const shs = require("secret-handshake");
const pull = require("pull-stream");
const toPull = require("stream-to-pull-stream");
const chloride = require("chloride");

let figure = "all";
let scale = 1;
let serve = null;  // in the child process: which server to run
for (let i = 2; i < process.argv.length; ++i) {
  if (process.argv[i] === "--figure" && i + 1 < process.argv.length) figure = process.argv[++i];
  else if (process.argv[i] === "--n" && i + 1 < process.argv.length) scale = Number(process.argv[++i]);
  else if (process.argv[i] === "--serve" && i + 1 < process.argv.length) serve = process.argv[++i];
  else {
    console.error("usage: node shs_bench.mjs [--figure handshake_tcp|handshake_tcp_1thread|" +
                  "boxstream|boxstream_1thread] [--n SCALE]");
    process.exit(2);
  }
}
const count = n => Math.max(2, Math.floor(n * scale));

function print(bench, n, value, unit) {
  console.log(JSON.stringify({ bench, provider: "shared-key", impl: "js", n,
                               value: Number(value.toFixed(1)), unit }));
}

// The child process gets the parent's keys, hex in its environment.
const keys = process.env.SHS_BENCH_KEYS
  ? JSON.parse(process.env.SHS_BENCH_KEYS,
               (k, v) => (typeof v === "string" ? Buffer.from(v, "hex") : v))
  : { appKey: randomBytes(32), client: chloride.crypto_sign_keypair(),
      server: chloride.crypto_sign_keypair() };
const { appKey, client: clientKeys, server: serverKeys } = keys;
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

// Starts `node shs_bench.mjs --serve KIND` with our keys and scale; resolves to the child and the
// port it listens on. Its later messages (results) are awaited with `nextMessage`.
function startServerProcess(kind) {
  const hexKeys = JSON.stringify(keys, (k, v) =>
    (v && v.type === "Buffer") ? Buffer.from(v.data).toString("hex") : v);
  const child = fork(fileURLToPath(import.meta.url), ["--serve", kind, "--n", String(scale)],
                     { env: { ...process.env, SHS_BENCH_KEYS: hexKeys } });
  const messages = [];
  const waiters = [];
  child.on("message", m => (waiters.length ? waiters.shift()(m) : messages.push(m)));
  child.on("exit", (code, signal) => {
    if (child.stopping) return;
    console.error(`the server process ended early (${signal ?? code})`);
    process.exit(1);
  });
  const nextMessage = () => new Promise(resolve =>
    (messages.length ? resolve(messages.shift()) : waiters.push(resolve)));
  const stop = () => { child.stopping = true; child.kill(); };
  return nextMessage().then(({ port }) => ({ child, port, nextMessage, stop }));
}

// The handshake server: counts the sessions; in a child process it reports the count when asked.
async function serveHandshakes() {
  let served = 0;
  let waiting = null;
  const server = await listen((secure, socket) => {
    ++served;
    socket.destroy();
    if (waiting) waiting();
  });
  const sessionsAtLeast = async count => {
    while (served < count) await new Promise(resolve => { waiting = resolve; });
  };
  return { server, port: server.address().port, sessionsAtLeast, served: () => served };
}

async function handshakeTcp(n, oneThread) {
  let server, port, sessionsAtLeast, child, nextMessage, stop;
  if (oneThread) ({ server, port, sessionsAtLeast } = await serveHandshakes());
  else ({ child, port, nextMessage, stop } = await startServerProcess("handshakes"));
  const start = performance.now();
  for (let i = 0; i < n; ++i) {
    const { socket } = await dial(port);
    // Both ends must finish, as in shs_bench; in another process the server finished before
    // its message 4 reached us.
    if (oneThread) await sessionsAtLeast(i + 1);
    socket.destroy();
  }
  const seconds = (performance.now() - start) / 1000;
  let served;
  if (oneThread) {
    served = n;
    server.close();
  } else {
    child.send({ sessions: n });
    ({ served } = await nextMessage());
    stop();
  }
  if (served !== n) throw new Error(`served ${served} of ${n}`);
  print(oneThread ? "shs.handshake_tcp_1thread" : "shs.handshake_tcp", n, n / seconds, "handshakes/s");
}

const frameBytes = 4096;

// The box-stream receiver: resolves `received` with the seconds from the first chunk to the last.
async function receiveFrames(frames) {
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
  return { server, port: server.address().port, received };
}

async function boxStreamTcp(frames, oneThread) {
  let server, port, received, nextMessage, stop;
  if (oneThread) ({ server, port, received } = await receiveFrames(frames));
  else ({ port, nextMessage, stop } = await startServerProcess("frames"));
  const { secure, socket } = await dial(port);
  const frame = Buffer.alloc(frameBytes, 0x5a);
  let sent = 0;
  pull(function source(end, cb) {
    if (end) return cb(end);
    if (sent === frames) return cb(true);
    ++sent;
    cb(null, frame);
  }, secure.sink);
  // The receiver hangs up when it has everything, which ends this source with an error.
  pull(secure.source, pull.drain(null, () => {}));
  const { seconds } = oneThread ? await received : await nextMessage();
  socket.destroy();
  if (oneThread) server.close();
  else stop();
  // The first chunk is not timed: count the others, as shs_bench does.
  print(oneThread ? "shs.boxstream_tcp_1thread" : "shs.boxstream_tcp", frames * frameBytes,
        ((frames - 1) * frameBytes) / seconds / 1e6, "MB/s");
}

// The child process's side: listen, tell the parent the port, answer with the result.
if (serve !== null) {
  if (serve === "handshakes") {
    const { port, sessionsAtLeast, served } = await serveHandshakes();
    process.on("message", async ({ sessions }) => {
      await sessionsAtLeast(sessions);
      process.send({ served: served() });
    });
    process.send({ port });
  } else {
    const { port, received } = await receiveFrames(count(16384));
    process.send({ port });
    process.send(await received);
  }
} else {
  await runFigures();
}

async function runFigures() {
  const figures = [
    ["handshake_tcp", () => handshakeTcp(count(500), false)],
    ["handshake_tcp_1thread", () => handshakeTcp(count(500), true)],
    ["boxstream", () => boxStreamTcp(count(16384), false)],
    ["boxstream_1thread", () => boxStreamTcp(count(16384), true)],
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
}
