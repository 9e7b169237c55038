// bench/automerge/document_bench.mjs — the document workload of bench/README.md, run through
// @automerge/automerge's ordinary documented API: one Automerge.change per op, Automerge.merge,
// Automerge.save, Automerge.load.
//
// This is the twin of bench/document_bench.cc. The two must generate the same ops from the same
// seed; the state digest each prints to stderr lets bench/document_compare check that they did.
//
// Usage: node document_bench.mjs [--seed S] [--reps R]
// stdout: one JSON line per figure (median of R runs, in milliseconds).
// stderr: saved size, change count and state digests.

import * as Automerge from "@automerge/automerge";

const kApplyOps = 10_000;
const kReplicaOps = 5_000;
const kKeyCount = 64;
const kDefaultSeed = 42;
const kDefaultReps = 5;
const kActorA = "01".repeat(16);
const kActorB = "02".repeat(16);
const kActorC = "03".repeat(16);

function fail(message) {
  process.stderr.write(`automerge document_bench: FAILED: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const options = { seed: kDefaultSeed, reps: kDefaultReps };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") {
      process.stdout.write("usage: node document_bench.mjs [--seed S] [--reps R]\n");
      process.exit(0);
    }
    let name = arg;
    let value;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq >= 0) {
      name = arg.slice(0, eq);
      value = arg.slice(eq + 1);
    } else if (arg === "--seed" || arg === "--reps") {
      value = argv[++i];
    }
    if (name !== "--seed" && name !== "--reps") fail(`unknown argument '${arg}'`);
    if (value === undefined || !/^[0-9]+$/.test(value)) fail(`${name} needs a non-negative integer`);
    const n = Number(value);
    if (name === "--seed") {
      if (n > 0xffffffff) fail("--seed must fit in 32 bits");
      options.seed = n;
    } else {
      if (n < 1 || n > 1000) fail("--reps must be between 1 and 1000");
      options.reps = n;
    }
  }
  return options;
}

// mulberry32. Every intermediate is taken mod 2^32, exactly as the C++ twin's uint32_t does.
function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const kKeys = Array.from({ length: kKeyCount }, (_, i) => `k${i}`);

// The op stream of one replica. Even ops set a root key to an int; odd ops insert one letter into
// the text near a cursor that drifts by -2..+2 each time. `textLength` is the text's length when
// the replica starts; the cursor starts at its end.
class OpGenerator {
  constructor(seed, textLength) {
    this.next32 = mulberry32(seed);
    this.length = textLength;
    this.cursor = textLength;
    this.index = 0;
  }

  next() {
    const r = this.next32();
    const i = this.index++;
    if (i % 2 === 0) return { set: true, key: kKeys[r % kKeyCount], value: r >>> 1 };
    const delta = ((r >>> 8) % 5) - 2;
    const pos = Math.min(Math.max(this.cursor + delta, 0), this.length);
    this.cursor = pos + 1;
    this.length += 1;
    return { set: false, pos, ch: String.fromCharCode(97 + (r % 26)) };
  }
}

function applyOp(doc, op) {
  if (op.set) {
    return Automerge.change(doc, (d) => {
      d[op.key] = op.value;
    });
  }
  return Automerge.change(doc, (d) => {
    Automerge.splice(d, ["text"], op.pos, 0, op.ch);
  });
}

function runOps(doc, generator, count) {
  for (let i = 0; i < count; i++) doc = applyOp(doc, generator.next());
  return doc;
}

// FNV-1a (32 bits) of the text and the root keys, in a form both twins write identically.
function stateDigest(doc) {
  let s = doc.text;
  for (const key of kKeys) {
    const v = doc[key];
    if (v !== undefined) s += `\n${key}=${v}`;
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

function runOnce(seed) {
  // Setup: A's first change makes the empty text.
  let a = Automerge.init({ actor: kActorA });
  a = Automerge.change(a, (d) => {
    d.text = "";
  });

  let t0 = performance.now();
  a = runOps(a, new OpGenerator(seed, 0), kApplyOps);
  const applyMs = performance.now() - t0;
  if (a.text.length !== kApplyOps / 2) fail(`A's text has ${a.text.length} characters`);
  const digestApply = stateDigest(a);

  const forkLength = a.text.length;
  let b = Automerge.clone(a, { actor: kActorB });
  let c = Automerge.clone(a, { actor: kActorC });
  b = runOps(b, new OpGenerator((seed + 1) >>> 0, forkLength), kReplicaOps);
  c = runOps(c, new OpGenerator((seed + 2) >>> 0, forkLength), kReplicaOps);

  t0 = performance.now();
  b = Automerge.merge(b, c);
  const mergeMs = performance.now() - t0;

  t0 = performance.now();
  const saved = Automerge.save(b);
  const saveMs = performance.now() - t0;

  t0 = performance.now();
  const loaded = Automerge.load(saved);
  const loadMs = performance.now() - t0;

  const expectedLength = kApplyOps / 2 + 2 * (kReplicaOps / 2);
  if (loaded.text.length !== expectedLength) {
    fail(`loaded text has ${loaded.text.length} characters, expected ${expectedLength}`);
  }
  const changes = Automerge.stats(loaded).numChanges;
  const expectedChanges = 1 + kApplyOps + 2 * kReplicaOps;
  if (changes !== expectedChanges) fail(`loaded document has ${changes} changes, expected ${expectedChanges}`);

  return {
    applyMs, mergeMs, saveMs, loadMs,
    savedBytes: saved.length, changes, digestApply, digestLoad: stateDigest(loaded),
  };
}

function median(values) {
  const v = [...values].sort((x, y) => x - y);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function main() {
  const { seed, reps } = parseArgs(process.argv.slice(2));
  const runs = [];
  for (let rep = 0; rep < reps; rep++) {
    const run = runOnce(seed);
    if (runs.length > 0 &&
        (run.digestApply !== runs[0].digestApply || run.digestLoad !== runs[0].digestLoad)) {
      fail("the workload gave a different state on a repeat run");
    }
    runs.push(run);
  }
  const last = runs[runs.length - 1];
  const figures = [
    ["document.apply", kApplyOps, runs.map((r) => r.applyMs)],
    ["document.merge", 2 * kReplicaOps, runs.map((r) => r.mergeMs)],
    ["document.save", last.changes, runs.map((r) => r.saveMs)],
    ["document.load", last.changes, runs.map((r) => r.loadMs)],
  ];
  for (const [bench, n, values] of figures) {
    const value = Number(median(values).toFixed(3));
    process.stdout.write(
      JSON.stringify({ bench, impl: "automerge", n, value, unit: "ms", seed }) + "\n");
  }
  process.stderr.write(
    `automerge document_bench: saved ${last.savedBytes} bytes (${last.changes} changes); ` +
    `state digest after apply ${last.digestApply}, after load ${last.digestLoad}\n`);
}

main();
