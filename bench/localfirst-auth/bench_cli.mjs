// bench/localfirst-auth/bench_cli.mjs — what team_bench.mjs and connection_bench.mjs share: failing
// loudly, their command line, JSON lines on stdout, and running the workload in a worker thread
// with a large stack (crdx walks the graph by recursion; `--stack-mb 0` runs it on the main
// thread).
import { Worker, isMainThread, workerData } from 'node:worker_threads'

// A function that prints "NAME: FAILED: message" to stderr and exits 1.
export function failer(name) {
  return (message) => {
    console.error(`${name}: FAILED: ${message}`)
    process.exit(1)
  }
}

// --n N[,N...] (each at least minN), --limit-s S, --stack-mb MB, and --reps R when `defaults`
// has `reps`. Unknown arguments fail.
export function parseArgs(argv, defaults, fail, minN = 1) {
  const out = { ...defaults }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`)
      return argv[++i]
    }
    if (arg === '--n') {
      out.ns = value().split(',').map(Number)
      if (out.ns.some(n => !Number.isInteger(n) || n < minN)) fail(`--n wants integers >= ${minN}`)
    } else if (arg === '--reps' && 'reps' in defaults) {
      out.reps = Number(value())
      if (!Number.isInteger(out.reps) || out.reps <= 0) fail('--reps wants a positive integer')
    } else if (arg === '--limit-s') {
      out.limitS = Number(value())
      if (!(out.limitS > 0)) fail('--limit-s wants a positive number')
    } else if (arg === '--stack-mb') {
      out.stackMb = Number(value())
      if (!Number.isInteger(out.stackMb) || out.stackMb < 0) fail('--stack-mb wants an integer >= 0')
    } else {
      fail(`unknown argument '${arg}'`)
    }
  }
  return out
}

export function print(record) {
  console.log(JSON.stringify(record))
}

// Runs `workload(args)` (sync or async) in a worker thread of the calling module with a
// `stackMb` stack, or on this thread when it is 0. `moduleUrl` is the caller's import.meta.url.
export function runInWorker(moduleUrl, argv, defaults, fail, workload, minN = 1) {
  const run = (args) => Promise.resolve().then(() => workload(args)).catch(e => fail(`${e.stack ?? e}`))
  if (!isMainThread) {
    run(workerData)
    return
  }
  const args = parseArgs(argv, defaults, fail, minN)
  if (args.stackMb === 0) {
    run(args)
  } else {
    const worker = new Worker(new URL(moduleUrl), {
      workerData: args, resourceLimits: { stackSizeMb: args.stackMb } })
    worker.on('error', (e) => fail(`${e.stack ?? e}`))
    worker.on('exit', (code) => { if (code !== 0) process.exitCode = code })
  }
}
