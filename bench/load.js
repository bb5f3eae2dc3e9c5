/**
 * `npm run load`: the gateway under many clients, over HTTP with JWT, against a real upstream.
 *
 * Phases (each against the same `sluice serve` process, defaults in brackets):
 * 1. **closed loop, `return 1`** — `--clients` [64] sessions, each sending its next execution as
 *    soon as the last one answered, for `--duration` [60 s]: throughput.
 * 2. **closed loop, one inner call** — the same with `tools.everything.get_sum` (server-everything
 *    over stdio, through policy and the audit log).
 * 3. **open loop, one inner call** — executions started at a fixed `--rate` [150/s] whatever
 *    the answers do, latency measured from the scheduled start (no coordinated omission).
 * 4. **past capacity** — `--burst` [200] executions of a 1 s upstream call at once: the gateway
 *    admits `maxConcurrentExecutions + maxQueuedExecutions` and answers the rest 503 with
 *    Retry-After; the figure is how fast the refusals come, and that none hangs.
 *
 * Every execution's answer is checked; any error not expected in its phase fails the run (exit
 * 1). Goals are printed beside the figures. Results go to `bench/results/load-<date>-<host>.json`.
 *
 * @module
 */
import fs from 'node:fs'
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { Session, childrenOf, cpuMs, startGateway } from './lib/gateway.js'
import { fmtMs, summarize } from './lib/stats.js'

const GOALS = {
  closedReturn1PerSec: 500,
  closedOneCallPerSec: 200,
  openP99Ms: 50,
  refusalP99Ms: 100,
}

const CODE = {
  return1: 'return 1',
  oneCall: 'return await tools.everything.get_sum({ a: 1, b: 2 })',
  oneSecond:
    'await tools.everything.trigger_long_running_operation({ duration: 1, steps: 1 }); return 1',
}

function parseArgs(argv) {
  const args = {
    concurrency: 8,
    clients: 64,
    durationS: 60,
    rate: 150,
    burst: 200,
    audit: 'fsync',
    quick: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2)
    const value = () => inline ?? argv[++i]
    if (flag === '--clients') args.clients = Number(value())
    else if (flag === '--duration') args.durationS = Number(value())
    else if (flag === '--rate') args.rate = Number(value())
    else if (flag === '--concurrency') args.concurrency = Number(value())
    else if (flag === '--burst') args.burst = Number(value())
    else if (flag === '--audit') args.audit = value()
    else if (flag === '--quick') args.quick = true
    else if (flag === '--only') args.only = value().split(',')
    else if (flag === '--no-save') args.noSave = true
    else throw new Error(`unknown argument ${argv[i]}`)
  }
  if (args.quick) args.durationS = Math.min(args.durationS, 10)
  if (!['fsync', 'nofsync', 'off'].includes(args.audit))
    throw new Error(`--audit: expected fsync, nofsync or off, got ${args.audit}`)
  return args
}

/** Tallies answers: latencies of successes, counts of every error code. */
function tally() {
  return { latencies: [], errors: {}, ok: 0 }
}

function record(t, outcome, ms) {
  if (outcome.ok) {
    t.ok++
    t.latencies.push(ms)
  } else {
    t.errors[outcome.code] = (t.errors[outcome.code] ?? 0) + 1
  }
}

async function closedLoop(sessions, code, durationMs) {
  const t = tally()
  const start = performance.now()
  const end = start + durationMs
  await Promise.all(
    sessions.map(async (s) => {
      while (performance.now() < end) {
        const sent = performance.now()
        record(t, await s.execute(code), performance.now() - sent)
      }
    }),
  )
  const seconds = (performance.now() - start) / 1000
  return {
    perSec: t.ok / seconds,
    seconds,
    ok: t.ok,
    errors: t.errors,
    latencyMs: summarize(t.latencies),
  }
}

async function openLoop(sessions, code, rate, durationMs) {
  const t = tally()
  const intervalMs = 1000 / rate
  const total = Math.floor((durationMs / 1000) * rate)
  const start = performance.now()
  const pending = []
  let maxInFlight = 0
  let inFlight = 0
  for (let i = 0; i < total; i++) {
    const scheduled = start + i * intervalMs
    const wait = scheduled - performance.now()
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    pending.push(
      sessions[i % sessions.length].execute(code).then((outcome) => {
        inFlight--
        record(t, outcome, performance.now() - scheduled)
      }),
    )
  }
  await Promise.all(pending)
  const seconds = (performance.now() - start) / 1000
  return {
    offeredPerSec: rate,
    perSec: t.ok / seconds,
    ok: t.ok,
    errors: t.errors,
    maxInFlight,
    latencyMs: summarize(t.latencies),
  }
}

async function burst(sessions, n) {
  const admitted = []
  const refused = []
  const other = {}
  const retryAfter = new Set()
  const start = performance.now()
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const sent = performance.now()
      const outcome = await sessions[i % sessions.length].execute(CODE.oneSecond)
      const ms = performance.now() - sent
      if (outcome.ok) admitted.push(ms)
      else if (outcome.status === 503 && outcome.code === 'OVERLOADED') {
        refused.push(ms)
        retryAfter.add(outcome.retryAfter)
      } else other[outcome.code] = (other[outcome.code] ?? 0) + 1
    }),
  )
  return {
    offered: n,
    admitted: admitted.length,
    refused503: refused.length,
    errors: other,
    retryAfterS: [...retryAfter].sort(),
    refusalMs: summarize(refused),
    admittedMs: summarize(admitted),
    wallMs: performance.now() - start,
  }
}

/**
 * Runs a phase and adds the CPU it cost: the gateway process (main thread and sandbox workers),
 * its upstream children, and this load generator, each in ms, and the gateway's per execution.
 */
async function measured(gateway, phase) {
  const children = () => childrenOf(gateway.pid)
  const before = {
    gateway: gateway.cpuMs(),
    upstreams: sum(children().map(cpuMs)),
    load: ownCpuMs(),
  }
  const result = await phase()
  const cpu = {
    gatewayMs: gateway.cpuMs() - before.gateway,
    upstreamsMs: sum(children().map(cpuMs)) - before.upstreams,
    loadGeneratorMs: ownCpuMs() - before.load,
  }
  const done = result.ok
  return {
    ...result,
    cpu: { ...cpu, gatewayMsPerExecution: done > 0 ? cpu.gatewayMs / done : Number.NaN },
  }
}

const sum = (xs) => xs.reduce((s, x) => s + x, 0)
const ownCpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

function machine() {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown',
    cores: cpus.length,
    ramGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.arch()} ${os.release()}`,
    host: os.hostname().split('.')[0],
    loadAvg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  }
}

const cpuLine = (r) =>
  `CPU per execution: gateway ${fmtMs(r.cpu.gatewayMsPerExecution)}, upstream ${fmtMs(r.cpu.upstreamsMs / r.ok)}, load generator ${fmtMs(r.cpu.loadGeneratorMs / r.ok)}`
const count = (errors) => Object.values(errors).reduce((s, n) => s + n, 0)
const verdict = (met) => (met ? 'met' : 'MISSED')

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const durationMs = args.durationS * 1000
  const m = machine()
  process.stderr.write(
    `load: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB, Node ${m.node}; ${args.clients} clients, ${args.durationS} s per phase, audit ${args.audit}\n`,
  )
  const limits = { maxConcurrentExecutions: args.concurrency, maxQueuedExecutions: 64 }
  const gateway = await startGateway({ limits, audit: args.audit })
  const results = { machine: m, args, limits, gatewayRssMiB: {}, phases: {} }
  const wanted = (name) => args.only === undefined || args.only.includes(name)
  try {
    const sessions = await Promise.all(
      Array.from({ length: args.clients }, async (_, i) =>
        new Session(gateway.url, await gateway.token(`client-${i}`)).open(),
      ),
    )
    results.gatewayRssMiB.start = gateway.rssMiB()
    // Warm the workers and the upstream connection so phase 1 does not measure start-up.
    await closedLoop(sessions, CODE.oneCall, Math.min(3000, durationMs))

    if (wanted('closed')) {
      process.stderr.write('  closed loop, return 1 …\n')
      results.phases.closedReturn1 = await measured(gateway, () =>
        closedLoop(sessions, CODE.return1, durationMs),
      )
      process.stderr.write('  closed loop, one inner call …\n')
      results.phases.closedOneCall = await measured(gateway, () =>
        closedLoop(sessions, CODE.oneCall, durationMs),
      )
    }
    if (wanted('open')) {
      process.stderr.write(`  open loop at ${args.rate}/s, one inner call …\n`)
      results.phases.openOneCall = await measured(gateway, () =>
        openLoop(sessions, CODE.oneCall, args.rate, durationMs),
      )
    }
    if (wanted('burst')) {
      process.stderr.write(`  ${args.burst} executions of 1 s at once …\n`)
      results.phases.burst = await burst(sessions, args.burst)
    }
    results.gatewayRssMiB.end = gateway.rssMiB()
    await Promise.all(sessions.map((s) => s.close()))
  } finally {
    results.exitCode = await gateway.stop()
  }

  const p = results.phases
  const lines = [
    `sluice load test: ${m.cpu}, ${m.cores} cores, Node ${m.node}, audit ${args.audit}`,
  ]
  const unexpected = []
  if (p.closedReturn1) {
    const r = p.closedReturn1
    lines.push(
      `closed loop, ${args.clients} clients, return 1: ${r.perSec.toFixed(0)} executions/s (goal ≥ ${GOALS.closedReturn1PerSec}: ${verdict(r.perSec >= GOALS.closedReturn1PerSec)}); latency p50 ${fmtMs(r.latencyMs.p50)} p99 ${fmtMs(r.latencyMs.p99)}; errors ${count(r.errors)}; ${cpuLine(r)}`,
    )
    if (count(r.errors) > 0) unexpected.push(['closedReturn1', r.errors])
  }
  if (p.closedOneCall) {
    const r = p.closedOneCall
    lines.push(
      `closed loop, ${args.clients} clients, one inner call: ${r.perSec.toFixed(0)} executions/s (goal ≥ ${GOALS.closedOneCallPerSec}: ${verdict(r.perSec >= GOALS.closedOneCallPerSec)}); latency p50 ${fmtMs(r.latencyMs.p50)} p99 ${fmtMs(r.latencyMs.p99)}; errors ${count(r.errors)}; ${cpuLine(r)}`,
    )
    if (count(r.errors) > 0) unexpected.push(['closedOneCall', r.errors])
  }
  if (p.openOneCall) {
    const r = p.openOneCall
    lines.push(
      `open loop at ${r.offeredPerSec}/s, one inner call: p50 ${fmtMs(r.latencyMs.p50)} p95 ${fmtMs(r.latencyMs.p95)} p99 ${fmtMs(r.latencyMs.p99)} (goal p99 ≤ ${GOALS.openP99Ms} ms: ${verdict(r.latencyMs.p99 <= GOALS.openP99Ms)}); ${r.perSec.toFixed(0)} done/s, at most ${r.maxInFlight} in flight; errors ${count(r.errors)}; ${cpuLine(r)}`,
    )
    if (count(r.errors) > 0) unexpected.push(['openOneCall', r.errors])
  }
  if (p.burst) {
    const r = p.burst
    const capacity = limits.maxConcurrentExecutions + limits.maxQueuedExecutions
    lines.push(
      `past capacity, ${r.offered} × 1 s at once: ${r.admitted} ran (capacity ${capacity}), ${r.refused503} answered 503 OVERLOADED in p50 ${fmtMs(r.refusalMs.p50)} p99 ${fmtMs(r.refusalMs.p99)} (goal p99 ≤ ${GOALS.refusalP99Ms} ms: ${verdict(r.refusalMs.p99 <= GOALS.refusalP99Ms)}), Retry-After ${r.retryAfterS.join(',')} s; all answered in ${fmtMs(r.wallMs)}; other errors ${count(r.errors)}`,
    )
    if (count(r.errors) > 0) unexpected.push(['burst', r.errors])
    if (r.admitted + r.refused503 !== r.offered)
      unexpected.push(['burst', { unanswered: r.offered - r.admitted - r.refused503 }])
  }
  lines.push(
    `gateway RSS ${results.gatewayRssMiB.start} MiB after warm-up, ${results.gatewayRssMiB.end} MiB at the end; SIGTERM exit ${results.exitCode}`,
  )
  process.stdout.write(`${lines.join('\n')}\n`)

  if (!args.noSave) {
    const dir = new URL('./results/', import.meta.url)
    fs.mkdirSync(dir, { recursive: true })
    const date = new Date().toISOString().slice(0, 10)
    const file = new URL(`load-${date}-${m.host}${args.quick ? '-quick' : ''}.json`, dir)
    fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`)
    process.stderr.write(`saved ${file.pathname}\n`)
  }
  if (unexpected.length > 0) {
    process.stderr.write(`unexpected errors: ${JSON.stringify(unexpected)}\n`)
    process.exitCode = 1
  }
}

await main()
