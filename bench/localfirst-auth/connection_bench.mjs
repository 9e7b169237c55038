// bench/localfirst-auth/connection_bench.mjs — the handshake + sync of two team members through
// @localfirst/auth 6.0.0's own connection protocol, for comparison with
// `team_provider.handshake_sync` in bench/team_provider_bench.cc (see bench/README.md,
// "team_provider_bench").
//
// For each N: the founder builds a team of N members with one device each (createTeam, then per
// member createUser, createDevice and team.addForTesting(user, [], redactDevice(device)), as the
// library's own auth.benchmark.ts does: the graph holds only the device's public keys). The graph
// is saved once, and two members, m1 and m2, each load their own Team from it
// (loadTeam(bytes, {user, device}, team.teamKeys())): identical graphs. This is setup, untimed,
// once per N.
//
// Each rep then makes two fresh `Connection`s ({sendMessage, context: {user, device, team}}, the
// library's documented member context) joined by an in-memory pipe in this one process: what one
// side's sendMessage is handed (a Uint8Array, the msgpack encoding of the numbered protocol
// message, which is what the library's transport would write) goes unchanged to the other side's
// deliver() on a later turn of the event loop (setImmediate), in order. Timed: from a.start() and
// b.start() until both have emitted 'connected' (identity claim, signature challenges, seed
// exchange, graph sync; the event fires when the state machine enters `connected`). Counted: the
// byteLength of every message both sides handed to sendMessage up to that moment (`bytes`), and
// again once the pipe has been idle for 20 ms (`bytes_settled`: any sync message still in flight).
// The figure is the median of --reps reps after one warm-up rep; each rep stops both connections
// (after the counting; the DISCONNECT messages are not sent anywhere). `cpu_ms` is the median of
// the process's CPU time (process.cpuUsage(), user + system, every thread: the workload's, node's
// GC helpers, the idle main thread) over the same interval; on a busy machine it moves less than
// the wall time.
//
// Checks (untimed; a failure aborts with a message and a non-zero exit): both connections are in
// state `connected`, each knows the other as its peer (userId and deviceId), both derived the same
// session key, both teams still have N + 1 members with one device each and the same head as
// before, and neither side reported an error or a disconnect.
//
// As in team_bench.mjs, crdx recurses over the graph, so the workload runs in a worker thread with
// a larger stack (--stack-mb, default 256; 0 runs on the main thread with node's default stack).
//
// Usage: node connection_bench.mjs [--n N[,N...]] [--reps R] [--limit-s S] [--stack-mb MB]
//   --n defaults to 100,200,500, --reps to 5; the run stops after the first N whose median
//   handshake takes more than --limit-s seconds (default 60), and abandons a team build that alone
//   takes longer than that.
// stdout: one JSON line per figure; progress goes to stderr.
import { failer, print, runInWorker } from './bench_cli.mjs'
import { Connection, createDevice, createTeam, createUser, loadTeam, redactDevice }
  from '@localfirst/auth'

const fail = failer('connection_bench.mjs')
const DEFAULTS = { ns: [100, 200, 500], reps: 5, limitS: 60, stackMb: 256 }

const IDLE_MS = 20
const WATCHDOG_MS = 30 * 60 * 1000

// The median; for an even count, the mean of the middle two.
function median(values) {
  const s = [...values].sort((x, y) => x - y)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

function sameBytes(x, y) {
  return x !== undefined && y !== undefined && x.length === y.length && x.every((v, i) => v === y[i])
}

// Builds the team as the founder and loads it for members m1 and m2. Returns null if the build
// alone passed the limit.
function setup(n, limitMs) {
  const start = performance.now()
  const founder = createUser('founder', 'founder')
  const founderDevice = createDevice({ userId: founder.userId, deviceName: 'founder-device' })
  const team = createTeam('bench', { user: founder, device: founderDevice })
  const members = []
  for (let i = 0; i < n; i++) {
    if (performance.now() - start > limitMs) return { abandoned: i }
    const user = createUser(`m${i}`, `m${i}`)
    const device = createDevice({ userId: user.userId, deviceName: `m${i}-device` })
    team.addForTesting(user, [], redactDevice(device))
    members.push({ user, device })
  }
  const buildMs = performance.now() - start
  const saved = team.save()
  const teamKeys = team.teamKeys()
  const loadStart = performance.now()
  const a = { ...members[1] }
  a.team = loadTeam(saved, { user: a.user, device: a.device }, teamKeys)
  const b = { ...members[2] }
  b.team = loadTeam(saved, { user: b.user, device: b.device }, teamKeys)
  const loadMs = performance.now() - loadStart
  for (const side of [a, b]) checkTeam(side.team, n, 'after load')
  if (JSON.stringify(a.team.graph.head) !== JSON.stringify(b.team.graph.head)) {
    fail('the two loaded graphs have different heads')
  }
  return { a, b, buildMs, loadMs, graphBytes: saved.length,
           links: Object.keys(a.team.graph.links).length,
           head: JSON.stringify(a.team.graph.head) }
}

function checkTeam(team, n, when) {
  const members = team.members()
  if (members.length !== n + 1) fail(`${when}: ${members.length} members, expected ${n + 1}`)
  for (const m of members) {
    if ((m.devices ?? []).length !== 1) fail(`${when}: member ${m.userId} has ${m.devices?.length} devices`)
  }
}

// One handshake between fresh Connections over a fresh pipe.
async function handshake(a, b, n, head) {
  const sides = [a, b]
  const pipe = { open: true, inFlight: 0, bytes: [0, 0], messages: [0, 0], lastActivity: 0 }
  const conns = []
  const errors = []
  const send = (from) => (message) => {
    if (!pipe.open) return
    if (!(message instanceof Uint8Array)) fail(`sendMessage was handed ${typeof message}, not bytes`)
    pipe.bytes[from] += message.byteLength
    pipe.messages[from] += 1
    pipe.inFlight += 1
    setImmediate(() => {
      pipe.inFlight -= 1
      pipe.lastActivity = performance.now()
      if (!pipe.open) return
      try {
        conns[1 - from].deliver(message)
      } catch (e) {
        errors.push(`deliver to ${'ab'[1 - from]}: ${e.stack ?? e}`)
      }
    })
  }
  for (let i = 0; i < 2; i++) {
    const { user, device, team } = sides[i]
    conns.push(new Connection({ sendMessage: send(i), context: { user, device, team } }))
  }

  const connectedAt = [null, null]
  let bytesAtConnected = null
  let resolveBoth
  const both = new Promise(resolve => { resolveBoth = resolve })
  conns.forEach((c, i) => {
    const name = 'ab'[i]
    c.on('connected', () => {
      connectedAt[i] = performance.now()
      if (connectedAt[1 - i] !== null) {
        bytesAtConnected = [...pipe.bytes]
        resolveBoth()
      }
    })
    c.on('disconnected', (e) => { errors.push(`${name} disconnected: ${JSON.stringify(e)}`); resolveBoth() })
    c.on('localError', (e) => { errors.push(`${name} localError: ${JSON.stringify(e)}`); resolveBoth() })
    c.on('remoteError', (e) => { errors.push(`${name} remoteError: ${JSON.stringify(e)}`); resolveBoth() })
  })
  const watchdog = setTimeout(() => {
    errors.push(`not both connected after ${WATCHDOG_MS / 1000} s (states: ` +
                `${JSON.stringify(conns[0].state)}, ${JSON.stringify(conns[1].state)})`)
    resolveBoth()
  }, WATCHDOG_MS)

  const cpuStart = process.cpuUsage()
  const start = performance.now()
  conns[0].start()
  conns[1].start()
  await both
  const cpu = process.cpuUsage(cpuStart)
  clearTimeout(watchdog)
  if (errors.length) fail(`n=${n}: ${errors.join('; ')}`)
  const ms = Math.max(connectedAt[0], connectedAt[1]) - start
  const cpuMs = (cpu.user + cpu.system) / 1000

  // Let whatever is still in flight land, then count again.
  while (pipe.inFlight > 0 || performance.now() - pipe.lastActivity < IDLE_MS) await sleep(IDLE_MS)
  if (errors.length) fail(`n=${n}: ${errors.join('; ')}`)
  const bytesSettled = [...pipe.bytes]

  // Checks.
  for (let i = 0; i < 2; i++) {
    const c = conns[i]
    const other = sides[1 - i]
    if (c.state !== 'connected') fail(`n=${n}: ${'ab'[i]} is in state ${JSON.stringify(c.state)}`)
    const ctx = c._context
    if (ctx.peer?.userId !== other.user.userId) fail(`n=${n}: ${'ab'[i]} sees peer ${ctx.peer?.userId}`)
    if (ctx.theirDevice?.deviceId !== other.device.deviceId) {
      fail(`n=${n}: ${'ab'[i]} sees device ${ctx.theirDevice?.deviceId}`)
    }
    if (c.team !== sides[i].team) fail(`n=${n}: ${'ab'[i]}'s connection holds another Team`)
    checkTeam(c.team, n, `n=${n}: ${'ab'[i]} after connecting`)
    if (JSON.stringify(c.team.graph.head) !== head) fail(`n=${n}: ${'ab'[i]}'s head moved`)
  }
  if (!sameBytes(conns[0]._sessionKey, conns[1]._sessionKey)) fail(`n=${n}: the session keys differ`)

  pipe.open = false
  for (const c of conns) c.stop()
  return { ms, cpuMs, bytes: bytesAtConnected, bytesSettled, messages: [...pipe.messages] }
}

async function runWorkload({ ns, reps, limitS }) {
  const limitMs = limitS * 1000
  let reached = 0
  let stopped = null
  for (const n of ns) {
    const s = setup(n, limitMs)
    if (s.abandoned !== undefined) {
      stopped = { n, reason: `the build passed ${limitS} s after ${s.abandoned} of ${n} members` }
      break
    }
    console.error(`connection_bench.mjs: n=${n}: build ${(s.buildMs / 1000).toFixed(1)} s, ` +
                  `two loads ${(s.loadMs / 1000).toFixed(1)} s, ${s.links} links, ` +
                  `${s.graphBytes} bytes saved`)
    const warm = await handshake(s.a, s.b, n, s.head)
    console.error(`connection_bench.mjs: n=${n}: warm-up ${warm.ms.toFixed(1)} ms`)
    const runs = []
    for (let r = 0; r < reps; r++) {
      const run = await handshake(s.a, s.b, n, s.head)
      runs.push(run)
      console.error(`connection_bench.mjs: n=${n}: rep ${r + 1}/${reps}: ${run.ms.toFixed(1)} ms ` +
                    `(CPU ${run.cpuMs.toFixed(1)} ms), ` +
                    `${run.bytes[0] + run.bytes[1]} bytes (${run.bytes[0]} a->b, ` +
                    `${run.bytes[1]} b->a; ${run.messages[0]} + ${run.messages[1]} messages, ` +
                    `${run.bytesSettled[0] + run.bytesSettled[1]} bytes after ${IDLE_MS} ms idle), ` +
                    `heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`)
    }
    const ms = median(runs.map(r => r.ms))
    const total = runs.map(r => r.bytes[0] + r.bytes[1])
    const settled = runs.map(r => r.bytesSettled[0] + r.bytesSettled[1])
    print({ bench: 'localfirst-auth.handshake_sync', impl: 'localfirst-auth', n,
            ms: Number(ms.toFixed(3)), bytes: Math.round(median(total)), reps,
            min_ms: Number(Math.min(...runs.map(r => r.ms)).toFixed(3)),
            max_ms: Number(Math.max(...runs.map(r => r.ms)).toFixed(3)),
            cpu_ms: Number(median(runs.map(r => r.cpuMs)).toFixed(3)),
            bytes_min: Math.min(...total), bytes_max: Math.max(...total),
            bytes_a_to_b: Math.round(median(runs.map(r => r.bytes[0]))),
            bytes_b_to_a: Math.round(median(runs.map(r => r.bytes[1]))),
            bytes_settled: Math.round(median(settled)),
            messages: Math.round(median(runs.map(r => r.messages[0] + r.messages[1]))),
            links: s.links, graph_bytes: s.graphBytes })
    reached = n
    if (ms > limitMs) {
      stopped = { n, reason: `the median handshake took ${(ms / 1000).toFixed(1)} s (more than ${limitS} s)` }
      break
    }
  }
  print({ bench: 'localfirst-auth.handshake_sync_reached', impl: 'localfirst-auth', value: reached,
          unit: 'members', limit_s: limitS, stopped_at: stopped ? stopped.n : null,
          reason: stopped ? stopped.reason : 'every N ran' })
}

runInWorker(import.meta.url, process.argv.slice(2), DEFAULTS, fail, runWorkload, 3)
