// bench/automerge-repo/repo_bench.mjs — the repo workload of bench/README.md ("repo_bench"), run
// through @automerge/automerge-repo's ordinary documented API: two Repos in one process, without
// storage, connected by a MessageChannel through MessageChannelNetworkAdapter.
//
// This is the twin of build/bench/repo_bench (portcullis). Each figure runs in its own process;
// bench/repo_compare starts one process per figure.
//
// Usage: node repo_bench.mjs --figure find|changes|rss
// stdout: exactly one JSON line.
// stderr: a cross-check that the documents really arrived with the right values.

import { Repo } from "@automerge/automerge-repo";
import { MessageChannelNetworkAdapter } from "@automerge/automerge-repo-network-messagechannel";

const kFindDocs = 1_000;
const kChanges = 10_000;
// Untimed pause before the change loop, so that the initial sync of the document between A and B
// has finished and both sides are idle when the timer starts.
const kSettleMs = 250;
const kTimeoutMs = 120_000;

function fail(message) {
  process.stderr.write(`automerge-repo repo_bench: FAILED: ${message}\n`);
  process.exit(1);
}

function usage() {
  return "usage: node repo_bench.mjs --figure find|changes|rss\n";
}

function parseArgs(argv) {
  let figure;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") {
      process.stdout.write(usage());
      process.exit(0);
    } else if (arg === "--figure") {
      figure = argv[++i];
    } else if (arg.startsWith("--figure=")) {
      figure = arg.slice("--figure=".length);
    } else {
      process.stderr.write(usage());
      fail(`unknown argument '${arg}'`);
    }
  }
  if (!["find", "changes", "rss"].includes(figure)) {
    process.stderr.write(usage());
    fail("--figure must be find, changes or rss");
  }
  return figure;
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// Rejects `promise` if it does not settle within kTimeoutMs, so that a sync that never completes
// fails the run instead of hanging it.
function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), kTimeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Two repos over one MessageChannel. A never announces (its sharePolicy returns false), so B gets
// a document only by asking for it with find. B keeps the default policy, under which it asks its
// peers for documents it looks for.
async function makeRepos() {
  const { port1, port2 } = new MessageChannel();
  const a = new Repo({
    network: [new MessageChannelNetworkAdapter(port1)],
    sharePolicy: async () => false,
    peerId: "repo-a",
  });
  const b = new Repo({
    network: [new MessageChannelNetworkAdapter(port2)],
    peerId: "repo-b",
  });
  // Untimed: wait until each side has seen the other arrive.
  await withTimeout((async () => {
    while (!a.peers.includes("repo-b") || !b.peers.includes("repo-a")) await sleep(1);
  })(), "the two repos to connect");
  return { a, b };
}

// (a) A creates kFindDocs documents {n: i}; B finds all of them concurrently. Timed: from the first
// find until every handle is ready and shows its value.
async function runFind(a, b) {
  const createStart = performance.now();
  const urls = [];
  for (let i = 0; i < kFindDocs; i++) urls.push(a.create({ n: i }).url);
  const createMs = performance.now() - createStart;

  const start = performance.now();
  const handles = await withTimeout(Promise.all(urls.map(url => b.find(url))), "B's finds");
  for (let i = 0; i < kFindDocs; i++) {
    const n = handles[i].doc()?.n;
    if (n !== i) fail(`document ${i} found by B has n = ${n}, expected ${i}`);
  }
  const ms = performance.now() - start;

  let sum = 0;
  for (const handle of handles) sum += handle.doc().n;
  process.stderr.write(`find: A created ${kFindDocs} documents in ${createMs.toFixed(1)} ms ` +
                       `(untimed); B holds ${Object.keys(b.handles).length} handles, found ` +
                       `${handles.length} ready documents, sum of n = ${sum} ` +
                       `(expected ${(kFindDocs * (kFindDocs - 1)) / 2})\n`);
  return ms;
}

// (b) A creates one document, B finds it and both sync it. Timed: kChanges changes at A in one
// synchronous loop, one handle.change (one commit) each, until B's copy shows the last value.
async function runChanges(a, b) {
  const handleA = a.create({ k: -1 });
  const handleB = await withTimeout(b.find(handleA.url), "B to find the change document");
  if (handleB.doc().k !== -1) fail(`B's copy starts with k = ${handleB.doc().k}, expected -1`);
  await sleep(kSettleMs);

  const last = kChanges - 1;
  let sawLast;
  const arrived = new Promise(resolve => {
    sawLast = resolve;
  });
  const onChange = ({ doc }) => {
    if (doc.k === last) sawLast();
  };
  handleB.on("change", onChange);

  const start = performance.now();
  for (let i = 0; i < kChanges; i++) {
    handleA.change(d => {
      d.k = i;
    });
  }
  const loopMs = performance.now() - start;
  await withTimeout(arrived, `B to see k == ${last}`);
  const ms = performance.now() - start;
  handleB.off("change", onChange);

  const k = handleB.doc().k;
  if (k !== last) fail(`B's copy ends with k = ${k}, expected ${last}`);
  // One change from create plus one per iteration.
  const changesA = handleA.history().length;
  const changesB = handleB.history().length;
  process.stderr.write(`changes: the loop at A took ${loopMs.toFixed(1)} ms of the figure; ` +
                       `B's k = ${k}; changes in the document: A ${changesA}, ` +
                       `B ${changesB} (expected ${kChanges + 1})\n`);
  if (changesB !== kChanges + 1) fail(`B's copy holds ${changesB} changes, expected ${kChanges + 1}`);
  return ms;
}

function emit(record) {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

async function main() {
  const figure = parseArgs(process.argv.slice(2));
  const { a, b } = await makeRepos();
  try {
    if (figure === "find") {
      const ms = await runFind(a, b);
      emit({ bench: "repo.find", impl: "automerge-repo", n: kFindDocs,
             value: Number(ms.toFixed(3)), unit: "ms" });
    } else if (figure === "changes") {
      const ms = await runChanges(a, b);
      emit({ bench: "repo.changes", impl: "automerge-repo", n: kChanges,
             value: Number(ms.toFixed(3)), unit: "ms" });
    } else {
      const findMs = await runFind(a, b);
      const changesMs = await runChanges(a, b);
      const mib = process.resourceUsage().maxRSS / 1024;  // maxRSS is in KiB
      process.stderr.write(`rss: find ${findMs.toFixed(1)} ms, changes ${changesMs.toFixed(1)} ms ` +
                           `in this process\n`);
      emit({ bench: "repo.peak_rss", impl: "automerge-repo", value: Number(mib.toFixed(2)),
             unit: "MiB" });
    }
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  // Shutting down disconnects the adapters; process.exit then ends the process without waiting
  // for the repos' pending sync timers.
  await Promise.race([Promise.all([a.shutdown(), b.shutdown()]), sleep(1_000)]);
  process.exit(0);
}

main().catch(error => fail(error instanceof Error ? error.stack ?? error.message : String(error)));
