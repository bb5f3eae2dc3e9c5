/**
 * `npm run soak`: `--executions` [100,000] executions through one `sluice serve` over HTTP (JWT,
 * policy, audit, server-everything), `--clients` [16] sessions in a closed loop, every third
 * execution with one inner call. The gateway's resident set is sampled every `--sample-ms`
 * [2000]; growth is measured from the end of the warm-up (`--warmup` [10,000] executions: every
 * worker started, caches filled) to the end, and as a least-squares slope over the samples after
 * it. The resident set saw-tooths by tens of MiB as the garbage collector and the memory
 * recycling run, so growth is the median of the last `WINDOW` samples minus the median of the
 * first `WINDOW` after the warm-up (single samples are reported too). Each sample also records the
 * pool's worker count and the resumable streams' held bytes (from `/readyz`), the resident set
 * by kind (smaps: sandbox linear memories, malloc, files, other anonymous) and each thread's V8
 * heap (bench/lib/probe.js, preloaded into the gateway); the summary gives the worker range and
 * each figure's growth after the warm-up. Goal: growth ≤ 32 MiB. Every answer is checked; any error fails the run (exit 1). Results
 * go to `bench/results/soak-<date>-<host>.json`; `--analyse FILE` recomputes the figures of a saved run.
 *
 * @module
 */
import fs from 'node:fs'
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { join } from 'node:path'
import { Session, memoryMap, startGateway } from './lib/gateway.js'
import { slope } from './lib/stats.js'

const GOAL_GROWTH_MIB = 32
/** Samples (of `--sample-ms` each) whose median stands for the start and the end of the run. */
const WINDOW = 10

const CODE = [
  'return 1',
  'return await tools.everything.get_sum({ a: 1, b: 2 })',
  'const xs = []; for (let i = 0; i < 1000; i++) xs.push({ i, s: "x" + i }); return xs.length',
]

function parseArgs(argv) {
  const args = { executions: 100_000, warmup: 10_000, clients: 16, sampleMs: 2000, audit: 'fsync' }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2)
    const value = () => inline ?? argv[++i]
    if (flag === '--executions') args.executions = Number(value())
    else if (flag === '--warmup') args.warmup = Number(value())
    else if (flag === '--clients') args.clients = Number(value())
    else if (flag === '--sample-ms') args.sampleMs = Number(value())
    else if (flag === '--audit') args.audit = value()
    else if (flag === '--no-save') args.noSave = true
    else if (flag === '--out') args.out = value()
    else if (flag === '--analyse') args.analyse = value()
    else throw new Error(`unknown argument ${argv[i]}`)
  }
  if (!(args.warmup < args.executions)) throw new Error('--warmup must be below --executions')
  return args
}

/** The memory figures of a run: samples from index `warmAt` on are after the warm-up. */
function analyse(samples, warmAt) {
  const after = samples.slice(warmAt)
  const round = (x) => Math.round(x * 10) / 10
  const rss = after.map((s) => s.rssMiB)
  const warmMedian = median(rss.slice(0, WINDOW))
  const endMedian = median(rss.slice(-WINDOW))
  return {
    rssMiB: {
      start: samples[0].rssMiB,
      warm: after[0].rssMiB,
      end: after.at(-1).rssMiB,
      peak: Math.max(...rss),
      warmMedian,
      endMedian,
      growth: round(endMedian - warmMedian),
    },
    slopeMiBPer1000: slope(
      after.map((s) => s.done / 1000),
      rss,
    ),
    components: components(after),
  }
}

/**
 * Where the growth is: for each memory figure the samples carry (V8 heaps from the probe, the
 * resident set by kind from smaps, the event store), the median of the first `WINDOW` samples
 * after the warm-up, of the last `WINDOW`, and the difference.
 */
function components(after) {
  const round = (x) => Math.round(x * 10) / 10
  const keys = [...new Set(after.flatMap((s) => Object.keys(s)))].filter(
    (k) => k.endsWith('MiB') && k !== 'rssMiB',
  )
  return Object.fromEntries(
    keys.map((k) => {
      const values = after.map((s) => s[k]).filter((v) => typeof v === 'number')
      const warm = median(values.slice(0, WINDOW))
      const end = median(values.slice(-WINDOW))
      return [k, { warm: round(warm), end: round(end), growth: round(end - warm) }]
    }),
  )
}

/**
 * Attaches to each sample the probe's figures (bench/lib/probe.js) nearest before it: the main
 * thread's V8 heap, and the sum over the sandbox workers.
 */
function attachProbe(samples, file) {
  let lines
  try {
    lines = fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map(JSON.parse)
  } catch {
    return
  }
  const round = (x) => Math.round(x * 10) / 10
  for (const s of samples) {
    const latest = new Map()
    for (const l of lines) if (l.at <= s.at + 500) latest.set(l.thread, l)
    const main = latest.get(0)
    const workers = [...latest.entries()].filter(([t]) => t !== 0).map(([, l]) => l)
    if (main !== undefined) {
      s.heapUsedMiB = main.usedMiB
      s.heapMiB = main.totalMiB
      s.oldSpaceUsedMiB = main.oldUsedMiB
      s.oldSpaceMiB = main.oldMiB
      s.newSpaceMiB = main.newMiB
      s.externalMiB = main.externalMiB
      s.arrayBuffersMiB = main.arrayBuffersMiB
    }
    if (workers.length > 0) {
      s.workerHeapsMiB = round(workers.reduce((a, l) => a + l.totalMiB, 0))
      s.workerHeapsUsedMiB = round(workers.reduce((a, l) => a + l.usedMiB, 0))
      s.workerExternalMiB = round(workers.reduce((a, l) => a + l.externalMiB, 0))
    }
  }
}

/** Fewest and most pool workers over the samples that have the figure. */
function workerRange(samples) {
  const counts = samples.map((s) => s.workers).filter((n) => typeof n === 'number')
  return counts.length === 0
    ? { min: null, max: null }
    : { min: Math.min(...counts), max: Math.max(...counts) }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function summary(result, errorCount) {
  const { rssMiB: r, args } = result
  return (
    `sluice soak: ${result.executions} executions in ${result.seconds.toFixed(0)} s (${result.perSec.toFixed(0)}/s), ${errorCount} errors; ` +
    `gateway RSS ${r.start} MiB at start, ${r.warm} MiB after ${args.warmup} (warm-up), ${r.end} MiB at the end (peak ${r.peak}); ` +
    `pool workers ${result.workers.min}–${result.workers.max}; ` +
    `growth after warm-up ${r.growth} MiB (median of the last ${WINDOW} samples ${r.endMedian} − median of the first ${WINDOW} after warm-up ${r.warmMedian}; ` +
    `goal ≤ ${GOAL_GROWTH_MIB}: ${r.growth <= GOAL_GROWTH_MIB ? 'met' : 'MISSED'}), slope ${result.slopeMiBPer1000.toFixed(3)} MiB per 1000 executions` +
    (result.components === undefined
      ? ''
      : `\n  after warm-up → end (medians, MiB): ${Object.entries(result.components)
          .map(
            ([k, c]) =>
              `${k.replace(/MiB$/, '')} ${c.warm} → ${c.end} (${c.growth >= 0 ? '+' : ''}${c.growth})`,
          )
          .join(', ')}`)
  )
}

/** `--analyse FILE`: the figures of a saved run, recomputed (and the file updated). */
function reanalyse(file) {
  const result = JSON.parse(fs.readFileSync(file, 'utf8'))
  const warmAt = result.warmAt ?? result.samples.findIndex((s) => s.done >= result.args.warmup)
  Object.assign(
    result,
    { warmAt, workers: workerRange(result.samples) },
    analyse(result.samples, warmAt),
  )
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`)
  const errorCount = Object.values(result.errors).reduce((a, b) => a + b, 0)
  process.stdout.write(`${summary(result, errorCount)}\n`)
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  if (args.analyse !== undefined) return reanalyse(args.analyse)
  // Each thread of the gateway reports its V8 heap to this file (bench/lib/probe.js).
  const probeFile = join(os.tmpdir(), `sluice-soak-probe-${process.pid}.jsonl`)
  fs.rmSync(probeFile, { force: true })
  const gateway = await startGateway({
    audit: args.audit,
    probe: { file: probeFile, everyMs: args.sampleMs },
  })
  const samples = []
  const errors = {}
  let done = 0
  let warmAt
  const started = performance.now()
  // Each sample also records the pool's worker count and the resumable streams' held bytes
  // from /readyz (filled in when it answers): a pool that grows, or an event store that fills,
  // shows there rather than only as resident set.
  const sample = () => {
    const s = {
      t: (performance.now() - started) / 1000,
      at: Date.now(),
      done,
      rssMiB: gateway.rssMiB(),
      // The resident set by kind: sandbox linear memories, malloc, mapped files, other anonymous.
      ...(process.platform === 'linux' ? memoryMap(gateway.pid) : {}),
    }
    samples.push(s)
    fetch(new URL('/readyz', gateway.url))
      .then((res) => res.json())
      .then((body) => {
        s.workers = body.pool?.workers
        if (body.resumability !== undefined) s.eventMiB = body.resumability.bytes / 2 ** 20
      })
      .catch(() => undefined)
  }
  const timer = setInterval(sample, args.sampleMs)
  try {
    const sessions = await Promise.all(
      Array.from({ length: args.clients }, async (_, i) =>
        new Session(gateway.url, await gateway.token(`soak-${i}`)).open(),
      ),
    )
    sample()
    let next = 0
    await Promise.all(
      sessions.map(async (s) => {
        while (next < args.executions) {
          const n = next++
          const outcome = await s.execute(CODE[n % CODE.length])
          if (!outcome.ok) errors[outcome.code] = (errors[outcome.code] ?? 0) + 1
          done++
          if (done === args.warmup) {
            sample()
            warmAt = samples.length - 1
          }
          if (done % Number(process.env.SOAK_EVERY ?? 10_000) === 0)
            process.stderr.write(`  ${done} executions, ${gateway.rssMiB()} MiB\n`)
        }
      }),
    )
    sample()
    await Promise.all(sessions.map((s) => s.close()))
  } finally {
    clearInterval(timer)
    await gateway.stop()
  }
  attachProbe(samples, probeFile)
  fs.rmSync(probeFile, { force: true })

  const { rssMiB, slopeMiBPer1000: perThousand, components: parts } = analyse(samples, warmAt)
  const seconds = (performance.now() - started) / 1000
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0)
  const cpus = os.cpus()
  const result = {
    machine: {
      cpu: cpus[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown',
      cores: cpus.length,
      node: process.version,
      host: os.hostname().split('.')[0],
    },
    args,
    executions: done,
    seconds,
    perSec: done / seconds,
    errors,
    warmAt,
    rssMiB,
    slopeMiBPer1000: perThousand,
    components: parts,
    workers: workerRange(samples),
    samples,
  }
  process.stdout.write(`${summary(result, errorCount)}\n`)
  if (!args.noSave) {
    const dir = new URL('./results/', import.meta.url)
    fs.mkdirSync(dir, { recursive: true })
    const file =
      args.out === undefined
        ? new URL(`soak-${new Date().toISOString().slice(0, 10)}-${result.machine.host}.json`, dir)
        : new URL(args.out, `file://${process.cwd()}/`)
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`)
    process.stderr.write(`saved ${file.pathname}\n`)
  }
  if (errorCount > 0) {
    process.stderr.write(`errors: ${JSON.stringify(errors)}\n`)
    process.exitCode = 1
  }
}

await main()
