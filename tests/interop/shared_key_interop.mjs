// The `shared-key` provider against the JS reference, secret-handshake 1.1.21 with
// pull-box-stream 1.0.13, over TCP, in both roles:
//   - JS client → `portcullis serve` (the real tool, its [auth] table naming the plugin, its
//     identity made by `portcullis keygen`), after `portcullis doc new` has stored one document
//     on it through a portcullis client with its own keygen identity;
//   - a portcullis node (shared_key_peer: a Repo on TCP whose provider is the plugin) dialing
//     net:HOST:PORT~shs:KEY → a JS server. (Not `portcullis doc new`: it waits for the server's
//     storedHeads acknowledgement, which a JS server never sends.)
//
// What it proves, per direction:
//   - the handshake completes with each side seeing the other's real device key: the JS client
//     dials serve under the key from its ready line and the handshake proves that key; the JS
//     server sees shared_key_peer's key;
//   - C++ → JS box-stream: the JS side opens the node's first frame, its hello (one box-stream
//     message of capnp bytes naming the node's key), and later frames: the advertisement of the
//     node's document, whose 16 ID bytes are those of the URL `doc new` printed (serve) or of the
//     ID the node printed (shared_key_peer);
//   - JS → C++ box-stream: the JS side sends the node's hello back with its own key in place of
//     the node's (the same length, so the capnp stays valid), as one box-stream message. Only
//     after opening it, decoding the hello and finding the key the handshake proved does the node
//     report the JS key authenticated: serve logs "repo: <JS key> authenticated by 'shared-key'
//     (...)" on stderr, shared_key_peer prints "authenticated <JS key>". A bit lost anywhere in
//     either direction fails the test;
//   - and that it can fail: a JS client with another network key is refused by serve (the JS
//     side's handshake fails; serve logs "repo: refused 127.0.0.1:<that client's port>: ..." and
//     never that key authenticated), and a C++ client that dials the JS server under a wrong
//     server key is refused on both ends.
// serve is stopped with SIGTERM at the end and must exit 0.
//
// Usage: node shared_key_interop.mjs NPM_DIR PEER_EXE PORTCULLIS_EXE WORK_DIR [SEED]
// The JS keys and network key derive from SEED (printed; random when absent); the portcullis
// nodes make their own device keys. Exit 0 on success, 1 on any failure.
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";

if (process.argv.length < 6 || process.argv.length > 7) {
  console.error("usage: node shared_key_interop.mjs NPM_DIR PEER_EXE PORTCULLIS_EXE WORK_DIR [SEED]");
  process.exit(2);
}
const [npmDir, peerExe, portcullisExe, workDir] = process.argv.slice(2, 6);
const seed = process.argv[6] ?? randomBytes(8).toString("hex");
console.log(`seed ${seed} (replay: pass it as the last argument)`);

const require = createRequire(path.join(path.resolve(npmDir), "package.json"));
const shs = require("secret-handshake");
const pull = require("pull-stream");
const Pushable = require("pull-pushable");
const chloride = require("chloride");

const derive = label => createHash("sha256").update(`${seed}/${label}`).digest();
const networkKey = derive("network-key");
const otherNetworkKey = derive("other-network-key");
const jsClientKeys = chloride.crypto_sign_seed_keypair(derive("js-client"));
const jsServerKeys = chloride.crypto_sign_seed_keypair(derive("js-server"));
const strangerKeys = chloride.crypto_sign_seed_keypair(derive("stranger"));
const hex = b => Buffer.from(b).toString("hex");
const timeoutMs = 5000;

function check(ok, what) {
  if (!ok) throw new Error(what);
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms); }),
  ]);
}

// A running shared_key_peer; waitFor(prefix) resolves with the rest of its first stdout line
// that starts with `prefix` (seen before or after the call).
function startPeer(name, args) {
  const dir = path.join(workDir, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const child = spawn(peerExe, [args[0], hex(networkKey), dir, ...args.slice(1)],
                      { stdio: ["ignore", "pipe", "inherit"] });
  const lines = [];
  const waiters = [];
  let pending = "";
  let exited = null;
  const settle = () => {
    for (const w of [...waiters]) {
      const line = lines.find(l => l.startsWith(w.prefix));
      if (line !== undefined) w.resolve(line.slice(w.prefix.length));
      else if (exited !== null) w.reject(new Error(`${name} exited (${exited}) before "${w.prefix}"`));
      else continue;
      waiters.splice(waiters.indexOf(w), 1);
    }
  };
  child.stdout.on("data", data => {
    pending += data;
    let end;
    while ((end = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      if (!line.startsWith("[")) console.log(`  [${name}] ${line}`);  // facts, not logs
      lines.push(line);
    }
    settle();
  });
  const gone = new Promise(resolve => {
    child.on("exit", (code, signal) => { exited = signal ?? code; settle(); resolve(); });
  });
  return {
    waitFor(prefix, ms = 10000) {
      return withTimeout(new Promise((resolve, reject) => {
        waiters.push({ prefix, resolve, reject });
        settle();
      }), ms, `${name}: "${prefix}"`);
    },
    // Kills it; resolves once it is gone, so that it dials no more.
    stop() {
      if (exited === null) child.kill("SIGTERM");
      return gone;
    },
  };
}

// Runs the portcullis tool to completion; resolves with its stdout, rejects on a non-zero exit.
function runTool(args, ms = 20000) {
  return new Promise((resolve, reject) => {
    execFile(portcullisExe, args, { timeout: ms }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`portcullis ${args.join(" ")}: ${err.message} ${stderr}`));
      resolve(stdout);
    });
  });
}

// A running `portcullis serve --json` under the shared-key plugin, its identity made by
// `portcullis keygen`, listening on 127.0.0.1 (any free port). Resolves once its ready line is
// read: { port, key (from the ready line), waitForLog(text), log(text), stop() }.
async function startServe(name) {
  const dir = path.join(workDir, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const identity = path.join(dir, "server.key");
  await runTool(["keygen", "--out", identity]);
  const config = path.join(dir, "node.toml");
  fs.writeFileSync(config, '[network]\nlisten = "127.0.0.1:0"\n' +
                   `[storage]\npath = "${path.join(dir, "data")}"\n` +
                   '[auth]\nprovider = "shared-key"\n[auth.shared-key]\n' +
                   `network-key = "${hex(networkKey)}"\nidentity = "${identity}"\n`);
  const child = spawn(portcullisExe, ["serve", "--config", config, "--json"],
                      { stdio: ["ignore", "pipe", "pipe"] });
  const logLines = [];
  const waiters = [];
  let exited = null;
  const settle = () => {
    for (const w of [...waiters]) {
      const line = logLines.find(l => l.includes(w.text));
      if (line !== undefined) w.resolve(line);
      else if (exited !== null) w.reject(new Error(`serve exited (${exited}) before logging "${w.text}"`));
      else continue;
      waiters.splice(waiters.indexOf(w), 1);
    }
  };
  let pendingLog = "";
  child.stderr.on("data", data => {
    pendingLog += data;
    let end;
    while ((end = pendingLog.indexOf("\n")) >= 0) {
      const line = pendingLog.slice(0, end);
      pendingLog = pendingLog.slice(end + 1);
      console.log(`  [${name}] ${line}`);
      logLines.push(line);
    }
    settle();
  });
  const gone = new Promise(resolve => {
    child.on("exit", (code, signal) => { exited = signal ?? code; settle(); resolve(exited); });
  });
  let pendingOut = "";
  let ready, port;
  try {
    ready = await withTimeout(new Promise((resolve, reject) => {
      child.stdout.on("data", data => {
        pendingOut += data;
        const end = pendingOut.indexOf("\n");
        if (end >= 0) resolve(JSON.parse(pendingOut.slice(0, end)));
      });
      gone.then(status => reject(new Error(`serve exited (${status}) before its ready line`)));
    }), 10000, `${name}: the ready line`);
    console.log(`  [${name}] ready: ${JSON.stringify(ready)}`);
    check(ready.provider === "shared-key", `serve runs provider ${ready.provider}`);
    port = Number(ready.listening[0].split(":").pop());
  } catch (err) {
    if (exited === null) child.kill("SIGKILL");
    throw err;
  }
  return {
    port,
    key: ready.peer,
    // Resolves with serve's first log line that contains `text` (logged before or after).
    waitForLog(text, ms = 10000) {
      return withTimeout(new Promise((resolve, reject) => {
        waiters.push({ text, resolve, reject });
        settle();
      }), ms, `${name}: a log line with "${text}"`);
    },
    logged(text) { return logLines.some(l => l.includes(text)); },
    // SIGTERM; resolves with its exit status once it is gone.
    stop() {
      if (exited === null) child.kill("SIGTERM");
      return withTimeout(gone, 20000, `${name}: exit after SIGTERM`);
    },
  };
}

// The 16 ID bytes (hex) of a document URL, "portcullis:" + base58(ID bytes + 4 checksum bytes,
// the first 4 bytes of SHA-256(SHA-256(ID bytes))).
function docIdHex(url) {
  const prefix = "portcullis:";
  check(url.startsWith(prefix), `not a document URL: ${url}`);
  const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  let n = 0n;
  for (const c of url.slice(prefix.length)) {
    const digit = alphabet.indexOf(c);
    check(digit >= 0, `not base58: ${url}`);
    n = n * 58n + BigInt(digit);
  }
  const payload = Buffer.from(n.toString(16).padStart(40, "0"), "hex");
  check(payload.length === 20, `a document URL of ${payload.length} bytes: ${url}`);
  const id = payload.subarray(0, 16);
  const sha = b => createHash("sha256").update(b).digest();
  check(sha(sha(id)).subarray(0, 4).equals(payload.subarray(16)), `checksum mismatch: ${url}`);
  return hex(id);
}

// A node socket as a pull-stream duplex (bytes in, bytes out).
function socketDuplex(socket) {
  const source = Pushable(() => socket.destroy());
  socket.on("data", data => source.push(data));
  socket.on("end", () => source.end());
  socket.on("error", err => source.end(err));
  const sink = read => {
    read(null, function next(end, data) {
      if (end === true) return socket.end();
      if (end) return socket.destroy();
      socket.write(data, () => read(null, next));
    });
  };
  return { source, sink };
}

// Frames out of a box-stream source, whose chunks are its messages: a message is a whole frame,
// except one of 4 bytes, which announces (u32 BE) the length of a frame cut into the messages after it.
function frameReader(source) {
  const frames = [];
  let cut = null;  // the frame being put together: { size, parts, have }
  let ended = null;
  let wake = null;
  pull(source, pull.drain(chunk => {
    if (cut === null && chunk.length !== 4) {
      frames.push(Buffer.from(chunk));
    } else if (cut === null) {
      cut = { size: chunk.readUInt32BE(0), parts: [], have: 0 };
    } else {
      cut.parts.push(Buffer.from(chunk));
      cut.have += chunk.length;
      if (cut.have > cut.size) ended = new Error("a message runs past its frame");
    }
    if (cut !== null && cut.have === cut.size) {
      frames.push(Buffer.concat(cut.parts));
      cut = null;
    }
    if (wake) wake();
  }, err => { ended = err ?? true; if (wake) wake(); }));
  return {
    next(ms = 5000) {
      return withTimeout(new Promise((resolve, reject) => {
        const poll = () => {
          if (frames.length) { wake = null; return resolve(frames.shift()); }
          if (ended !== null) { wake = null; return reject(new Error(`box-stream ended: ${ended}`)); }
          wake = poll;
        };
        poll();
      }), ms, "a frame from the node");
    },
  };
}

// The exchange over an established secure stream with the node `peer` (see the header).
// `authenticated(ourHex)` resolves once the node reports our key authenticated, rejects otherwise.
async function exercise(secure, nodeHex, ourHex, docHex, authenticated) {
  check(hex(secure.remote) === nodeHex, `the handshake proved ${hex(secure.remote)}, not the node's key`);
  const reader = frameReader(secure.source);
  const out = Pushable();
  pull(out, secure.sink);

  const hello = await reader.next();
  const nodeId = Buffer.from(nodeHex);
  const at = hello.indexOf(nodeId);
  check(at >= 0, "the node's first frame does not name its key");
  check(hello.indexOf(nodeId, at + 1) < 0, "the node's hello names its key twice");
  const ours = Buffer.from(hello);
  Buffer.from(ourHex).copy(ours, at);
  check(ours.length !== 4 && ours.length <= 4096, `a hello of ${ours.length} bytes`);
  out.push(ours);  // a frame that fits one box-stream message is that message
  console.log(`  js: opened the node's hello (${hello.length} bytes), sent ours`);

  await authenticated(ourHex);
  const doc = Buffer.from(docHex, "hex");
  for (let frames = 1; ; ++frames) {
    const frame = await reader.next();
    if (frame.indexOf(doc) >= 0) {
      console.log(`  js: opened ${frames} more frame(s), the last advertising document ${docHex}`);
      break;
    }
  }
  out.end();
}

function jsClient(port, serverKey, keys, appKey) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      const localPort = socket.localPort;
      const wire = socketDuplex(socket);
      const client = shs.createClient(keys, appKey, timeoutMs)(serverKey, (err, secure) => {
        if (err) { socket.destroy(); err.localPort = localPort; return reject(err); }
        resolve({ secure, socket });
      });
      pull(wire, client, wire);
    });
    socket.on("error", reject);
  });
}

// A JS server; each connection's handshake result goes to `onSession(err, secure, socket)`.
function jsServer(onSession) {
  return new Promise(resolve => {
    const server = net.createServer(socket => {
      socket.on("error", () => {});
      const wire = socketDuplex(socket);
      const handshake = shs.createServer(jsServerKeys, (pub, cb) => cb(null, true), networkKey,
                                         timeoutMs)((err, secure) => onSession(err, secure, socket));
      pull(wire, handshake, wire);
    });
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

const cases = [];
function test(name, body) { cases.push({ name, body }); }

test("a JS client and `portcullis serve`", async () => {
  const serve = await startServe("serve");
  let stopped = false;
  try {
    // A document on serve, stored through a portcullis client with its own identity.
    const clientKey = path.join(workDir, "serve", "client.key");
    await runTool(["keygen", "--out", clientKey]);
    const clientConfig = path.join(workDir, "serve", "client.toml");
    fs.writeFileSync(clientConfig, '[auth]\nprovider = "shared-key"\n[auth.shared-key]\n' +
                     `network-key = "${hex(networkKey)}"\nidentity = "${clientKey}"\n`);
    const created = JSON.parse(await runTool(
      ["doc", "new", "--connect", `net:127.0.0.1:${serve.port}~shs:${serve.key}`,
       "--config", clientConfig, "--timeout", "10", "--json"]));
    const docHex = docIdHex(created.url);
    console.log(`  doc new: ${created.url} (ID ${docHex})`);

    const { secure, socket } = await jsClient(serve.port, Buffer.from(serve.key, "hex"),
                                              jsClientKeys, networkKey);
    await exercise(secure, serve.key, hex(jsClientKeys.publicKey), docHex, async key => {
      const line = await serve.waitForLog(`repo: ${key} authenticated by 'shared-key'`);
      console.log(`  serve: ${line}`);
    });
    socket.destroy();

    // Another network key: the JS client is refused, and so is it by serve.
    let error = null;
    await jsClient(serve.port, Buffer.from(serve.key, "hex"), strangerKeys, otherNetworkKey)
      .then(({ socket: s }) => s.destroy(), err => { error = err; });
    check(error !== null, "a client with another network key completed the handshake");
    console.log(`  js: another network key refused: ${error.message}`);
    check(error.localPort > 0, "the refused client's port is unknown");
    const refusal = await serve.waitForLog(`repo: refused 127.0.0.1:${error.localPort}:`);
    console.log(`  serve: ${refusal}`);
    check(!serve.logged(`${hex(strangerKeys.publicKey)} authenticated`),
          "serve authenticated the client with another network key");

    stopped = true;
    const status = await serve.stop();
    check(status === 0, `serve exited ${status} on SIGTERM`);
  } finally {
    if (!stopped) await serve.stop().catch(() => {});
  }
});

test("a portcullis client (dial net:...~shs:KEY) and a JS server", async () => {
  let onSession = null;
  const server = await jsServer((err, secure, socket) => onSession(err, secure, socket));
  const { port } = server.address();
  const ssbKey = pk => Buffer.from(pk).toString("base64");
  try {
    const session = new Promise((resolve, reject) => {
      onSession = (err, secure, socket) => (err ? reject(err) : resolve({ secure, socket }));
    });
    const peer = startPeer("client", ["dial", `net:127.0.0.1:${port}~shs:${ssbKey(jsServerKeys.publicKey)}`]);
    try {
      const nodeHex = await peer.waitFor("key ");
      const docHex = await peer.waitFor("doc ");
      const { secure, socket } = await withTimeout(session, 10000, "the node's handshake");
      await exercise(secure, nodeHex, hex(jsServerKeys.publicKey), docHex, async key => {
        check(await peer.waitFor("authenticated ") === key, "the node authenticated another key");
      });
      socket.destroy();
    } finally {
      await peer.stop();
    }

    // The node dials the JS server under a wrong server key: both ends refuse.
    const refused = new Promise(resolve => {
      onSession = (err, secure, socket) => { socket.destroy(); resolve(err); };
    });
    const stranger = startPeer("stranger", ["dial", `net:127.0.0.1:${port}~shs:${ssbKey(strangerKeys.publicKey)}`]);
    try {
      const err = await withTimeout(refused, 10000, "the JS server's verdict");
      check(err, "the JS server accepted a client that expected another server key");
      console.log(`  js: the wrong server key refused: ${err.message}`);
      await stranger.waitFor("refused ");
    } finally {
      await stranger.stop();
    }
  } finally {
    server.close();
  }
});

let failed = 0;
for (const { name, body } of cases) {
  console.log(`== ${name}`);
  try {
    await withTimeout(body(), 60000, name);
    console.log("   ok");
  } catch (err) {
    ++failed;
    console.log(`   FAILED: ${err.stack ?? err}`);
  }
}
console.log(failed ? `${failed} of ${cases.length} failed` : `all ${cases.length} passed`);
process.exit(failed ? 1 : 0);
