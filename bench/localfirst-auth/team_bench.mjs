// bench/localfirst-auth/team_bench.mjs — the team-load workload of bench/README.md
// ("team_bench") run through @localfirst/auth 6.0.0, for comparison with bench/team_bench.cc.
//
// For each N: one admin (the founder) builds a team of N members with one device each, through
// the library's API (createTeam, then team.addForTesting(user, [], device) per member: the one
// call that adds a member together with a device whose keys the caller holds, as portcullis's
// addMember does with the device's consent); the team is saved (team.save(), the serialized
// graph), then loaded back with loadTeam(bytes, context, teamKeys), the documented load path,
// which decrypts every link and validates and reduces the graph as the library always does.
// Only the load is the figure; the build is reported beside it.
//
// crdx walks the graph recursively (a memoized recursion per link, one frame chain per link of
// depth), so with node's default stack (about 1 MB) a team of 1,000 members (2,000 links in one
// chain) ends in "RangeError: Maximum call stack size exceeded". The workload therefore runs in a
// worker thread with a larger stack (--stack-mb, default 256; 0 runs it on the main thread with
// node's default stack, to see the failure). Nothing in the library is changed.
//
// N runs through --n (default 100,200,500,1000,2000,5000,10000) and stops after the first N
// whose build + load exceeds --limit-s seconds (default 60); a build that alone passes the limit
// is abandoned at once. The last line says how far it got.
//
// Usage: node team_bench.mjs [--n N[,N...]] [--limit-s S] [--stack-mb MB]
// stdout: one JSON line per figure; progress goes to stderr.
import { failer, print, runInWorker } from './bench_cli.mjs'
import { createDevice, createTeam, createUser, loadTeam } from '@localfirst/auth'

const fail = failer('team_bench.mjs')
const DEFAULTS = { ns: [100, 200, 500, 1000, 2000, 5000, 10000], limitS: 60, stackMb: 256 }

function runWorkload({ ns, limitS }) {
  const limitMs = limitS * 1000
  let reached = 0
  let stopped = null
  for (const n of ns) {
    const start = performance.now()
    const founder = createUser('founder', 'founder')
    const founderDevice = createDevice({ userId: founder.userId, deviceName: 'founder-device' })
    const context = { user: founder, device: founderDevice }
    const team = createTeam('bench', context)
    let built = 0
    for (; built < n; built++) {
      if (performance.now() - start > limitMs) break
      const user = createUser(`m${built}`, `m${built}`)
      const device = createDevice({ userId: user.userId, deviceName: `m${built}-device` })
      team.addForTesting(user, [], device)
    }
    const buildMs = performance.now() - start
    if (built < n) {
      stopped = { n, reason: `the build passed ${limitS} s after ${built} of ${n} members` }
      break
    }
    const bytes = team.save()
    const teamKeys = team.teamKeys()

    const loadStart = performance.now()
    const loaded = loadTeam(bytes, context, teamKeys)
    const loadMs = performance.now() - loadStart

    // Checks (untimed): every member is there with its one device.
    const members = loaded.members()
    if (members.length !== n + 1) fail(`loaded ${members.length} members, expected ${n + 1}`)
    for (const m of members) {
      if ((m.devices ?? []).length !== 1) fail(`member ${m.userId} has ${m.devices?.length} devices`)
    }
    const links = Object.keys(loaded.graph.links).length
    console.error(`team_bench.mjs: n=${n}: build ${(buildMs / 1000).toFixed(1)} s, ` +
                  `load ${(loadMs / 1000).toFixed(2)} s, ${links} links, ${bytes.length} bytes`)
    print({ bench: 'team.load', impl: 'localfirst-auth', n, value: Number(loadMs.toFixed(3)),
            unit: 'ms', build_ms: Number(buildMs.toFixed(0)), links, bytes: bytes.length })
    reached = n
    if (buildMs + loadMs > limitMs) {
      stopped = { n, reason: `build + load took ${((buildMs + loadMs) / 1000).toFixed(1)} s ` +
                             `(more than ${limitS} s)` }
      break
    }
  }
  print({ bench: 'team.load_reached', impl: 'localfirst-auth', value: reached, unit: 'members',
          limit_s: limitS, stopped_at: stopped ? stopped.n : null,
          reason: stopped ? stopped.reason : 'every N ran' })
}

runInWorker(import.meta.url, process.argv.slice(2), DEFAULTS, fail, runWorkload, 1)
