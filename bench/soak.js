/**
 * `npm run soak`: `--executions` [100,000] executions through one `sluice serve` over HTTP (JWT,
 * policy, audit, server-everything), `--clients` [16] sessions in a closed loop, every third
 * execution with one inner call. The gateway's resident set is sampled every `--sample-ms`
 * [2000]; growth is measured from the end of the warm-up (`--warmup` [10,000] executions: every
 * worker started, caches filled) to the end, and as a least-squares slope over the samples after
 * it. Goal: growth ≤ 32 MiB. Every answer is checked; any error fails the run (exit 1). Results
 * go to `bench/results/soak-<date>-<host>.json`.
 *
 * @module
 */
import fs from 'node:fs'
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { Session, startGateway } from './lib/gateway.js'
import { slope } from './lib/stats.js'

const GOAL_GROWTH_MIB = 32

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
    else throw new Error(`unknown argument ${argv[i]}`)
  }
  if (!(args.warmup < args.executions)) throw new Error('--warmup must be below --executions')
  return args
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const gateway = await startGateway({ audit: args.audit })
  const samples = []
  const errors = {}
  let done = 0
  let warmAt
  const started = performance.now()
  const sample = () =>
    samples.push({ t: (performance.now() - started) / 1000, done, rssMiB: gateway.rssMiB() })
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

  const after = samples.slice(warmAt)
  const warm = after[0]
  const end = samples.at(-1)
  const growth = Math.round((end.rssMiB - warm.rssMiB) * 10) / 10
  const peak = Math.max(...after.map((s) => s.rssMiB))
  const perThousand = slope(
    after.map((s) => s.done / 1000),
    after.map((s) => s.rssMiB),
  )
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
    rssMiB: { start: samples[0].rssMiB, warm: warm.rssMiB, end: end.rssMiB, peak, growth },
    slopeMiBPer1000: perThousand,
    samples,
  }
  process.stdout.write(
    `sluice soak: ${done} executions in ${seconds.toFixed(0)} s (${result.perSec.toFixed(0)}/s), ${errorCount} errors; ` +
      `gateway RSS ${samples[0].rssMiB} MiB at start, ${warm.rssMiB} MiB after ${args.warmup} (warm-up), ${end.rssMiB} MiB at the end (peak ${peak}); ` +
      `growth after warm-up ${growth} MiB (goal ≤ ${GOAL_GROWTH_MIB}: ${growth <= GOAL_GROWTH_MIB ? 'met' : 'MISSED'}), slope ${perThousand.toFixed(3)} MiB per 1000 executions\n`,
  )
  if (!args.noSave) {
    const dir = new URL('./results/', import.meta.url)
    fs.mkdirSync(dir, { recursive: true })
    const file = new URL(
      `soak-${new Date().toISOString().slice(0, 10)}-${result.machine.host}.json`,
      dir,
    )
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`)
    process.stderr.write(`saved ${file.pathname}\n`)
  }
  if (errorCount > 0) {
    process.stderr.write(`errors: ${JSON.stringify(errors)}\n`)
    process.exitCode = 1
  }
}

await main()
