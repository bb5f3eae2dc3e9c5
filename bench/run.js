/**
 * The bench driver. `node --expose-gc run.js [--quick] [--only a,b]` runs each case in a fresh
 * child process (so one case's heap, JIT state and loaded peers cannot colour the next), prints
 * a table naming the machine, and writes `results/<date>-<host>[-quick][-<cases>].json`; a
 * complete full run also writes `results/latest.json`, `results/latest.md` and the table in both READMEs.
 *
 * @module
 */
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { fmtMs } from './lib/stats.js'
import { SkipError } from './lib/sluice.js'

/** Case id → module, in run order (cheap and independent first, long RSS soak last). */
export const CASES = {
  acquire: './cases/acquire.js',
  execute: './cases/execute.js',
  'per-call': './cases/per-call.js',
  'engine-call': './cases/engine-call.js',
  parallel: './cases/parallel.js',
  containment: './cases/containment.js',
  'cold-start': './cases/cold-start.js',
  'cold-demo': './cases/cold-demo.js',
  peers: './cases/peers.js',
  tokens: './cases/tokens.js',
  guard: './cases/guard.js',
  mistakes: './cases/mistakes.js',
  http: './cases/http.js',
  'guard-overhead': './cases/guard-overhead.js',
  rss: './cases/rss.js',
}

const HERE = fileURLToPath(new URL('.', import.meta.url))
const RESULTS = new URL('./results/', import.meta.url)

function parseArgs(argv) {
  const args = { quick: false, only: undefined, child: undefined, out: undefined, save: true }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--quick') args.quick = true
    else if (a === '--no-save') args.save = false
    else if (a === '--only') args.only = argv[++i]?.split(',').filter(Boolean)
    else if (a.startsWith('--only=')) args.only = a.slice(7).split(',').filter(Boolean)
    else if (a === '--case') args.child = argv[++i]
    else if (a === '--out') args.out = argv[++i]
    else if (a === '--help' || a === '-h') args.help = true
    else throw new Error(`unknown argument ${a}; try --help`)
  }
  for (const id of args.only ?? []) {
    if (!(id in CASES))
      throw new Error(`unknown case "${id}"; cases: ${Object.keys(CASES).join(', ')}`)
  }
  return args
}

/** Child mode: run one case, write its outcome as JSON to `out`. */
async function runCase(id, quick, out) {
  const mod = await import(CASES[id])
  const progress = (msg) => process.stderr.write(`  [${id}] ${msg}\n`)
  const started = performance.now()
  let outcome
  try {
    const r = await mod.run({ quick, progress })
    outcome = { status: 'ok', ...r }
  } catch (error) {
    outcome =
      error instanceof SkipError
        ? { status: 'skipped', reason: error.message }
        : { status: 'error', reason: String(error?.stack ?? error) }
  }
  outcome.title = mod.title
  outcome.seconds = (performance.now() - started) / 1000
  fs.writeFileSync(out, JSON.stringify(outcome))
}

function spawnCase(id, quick) {
  const out = `${os.tmpdir()}/sluice-bench-${process.pid}-${id}.json`
  const args = ['--expose-gc', fileURLToPath(import.meta.url), '--case', id, '--out', out]
  if (quick) args.push('--quick')
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: HERE,
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    child.on('exit', (code, signal) => {
      try {
        resolve(JSON.parse(fs.readFileSync(out, 'utf8')))
      } catch {
        resolve({
          status: 'error',
          reason: `case process exited with ${signal ?? code} and no result`,
        })
      } finally {
        fs.rmSync(out, { force: true })
      }
    })
  })
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

function gitRevision() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: HERE,
      encoding: 'utf8',
    }).trim()
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--', '../src'], {
        cwd: HERE,
        encoding: 'utf8',
      }).trim() !== ''
    return { commit, srcDirty: dirty }
  } catch {
    return undefined
  }
}

const cell = (x) => (x === undefined || x === '' ? '' : String(x).replace(/\|/g, '\\|'))
const met = (m) => (m.met === undefined ? '' : m.met ? '✓' : '✗')
const ratio = (r) => (r === undefined ? '' : `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`)

/** The report as markdown: a header naming the machine, latencies, derived results, skips. */
export function renderMarkdown(report) {
  const m = report.machine
  const lines = [
    `# sluice bench, ${report.date.slice(0, 10)} (${report.mode})`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, Node ${m.node}, ${m.platform}; ` +
      `load average at start ${m.loadAvg.join(' / ')}` +
      (report.git === undefined
        ? ''
        : `; sluice ${report.git.commit}${report.git.srcDirty ? ' (src modified)' : ''}`) +
      '.',
    '',
  ]
  const latency = [
    '| case | metric | p50 | p95 | p99 | mean | n | vs sluice (p50) | target | met |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ]
  const derived = []
  const skipped = []
  for (const [id, c] of Object.entries(report.cases)) {
    if (c.status !== 'ok') {
      skipped.push(`- \`${id}\` ${c.status}: ${cell(c.reason?.split('\n')[0])}`)
      continue
    }
    for (const x of c.metrics) {
      if (x.skipped !== undefined)
        skipped.push(`- \`${id}\` / ${x.label} skipped: ${cell(x.skipped)}`)
      else if (x.stats !== undefined) {
        const s = x.stats
        latency.push(
          `| ${id} | ${cell(x.label.trim())}${x.note ? ` (${cell(x.note)})` : ''} | ${fmtMs(s.p50)} | ${fmtMs(s.p95)} | ${fmtMs(s.p99)} | ${fmtMs(s.mean)} | ${s.n} | ${ratio(x.ratio)} | ${cell(x.target)} | ${met(x)} |`,
        )
      } else
        derived.push(
          x.ratio === undefined ? [id, x] : [id, { ...x, value: `${x.value}; ${ratio(x.ratio)}` }],
        )
    }
  }
  if (latency.length > 2) lines.push(...latency)
  if (derived.length > 0) {
    if (latency.length > 2) lines.push('')
    lines.push('| case | metric | result | target | met |', '|---|---|---|---|---|')
    for (const [id, x] of derived) {
      lines.push(
        `| ${id} | ${cell(x.label)} | ${cell(x.value)}${x.note ? ` (${cell(x.note)})` : ''} | ${cell(x.target)} | ${met(x)} |`,
      )
    }
  }
  if (skipped.length > 0) lines.push('', 'Not measured:', ...skipped)
  lines.push(
    '',
    `Cases ran in ${Object.values(report.cases)
      .reduce((s, c) => s + c.seconds, 0)
      .toFixed(0)} s; one fresh process per case.`,
  )
  return `${lines.join('\n')}\n`
}

/**
 * Replaces the table in bench/README.md (between the `latest` markers) and in the project's
 * README (between the `bench` markers) with the new one.
 */
function updateReadmes(markdown) {
  // The table's own H1 becomes plain text under the README's heading.
  const body = markdown.replace(/^# (.*)\n/, '**$1**\n')
  replaceBlock(new URL('./README.md', import.meta.url), 'latest', body)
  replaceBlock(new URL('../README.md', import.meta.url), 'bench', body)
}

function replaceBlock(file, marker, body) {
  if (!fs.existsSync(file)) return
  const text = fs.readFileSync(file, 'utf8')
  const start = `<!-- ${marker}:start -->`
  const end = `<!-- ${marker}:end -->`
  const a = text.indexOf(start)
  const b = text.indexOf(end)
  if (a < 0 || b < a) return
  fs.writeFileSync(file, `${text.slice(0, a + start.length)}\n${body}${text.slice(b)}`)
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  if (args.help) {
    process.stdout.write(
      `usage: npm --prefix bench run all -- [--quick] [--only ${Object.keys(CASES).join(',')}] [--no-save]\n`,
    )
    return
  }
  if (args.child !== undefined) return runCase(args.child, args.quick, args.out)

  const ids = args.only ?? Object.keys(CASES)
  const report = {
    version: 1,
    date: new Date().toISOString(),
    mode: args.quick ? 'quick' : 'full',
    machine: machine(),
    git: gitRevision(),
    cases: {},
  }
  for (const id of ids) {
    process.stderr.write(`${id}…\n`)
    report.cases[id] = await spawnCase(id, args.quick)
    const c = report.cases[id]
    process.stderr.write(
      `${id}: ${c.status}${c.reason ? ` (${c.reason.split('\n')[0]})` : ''}, ${c.seconds?.toFixed(1) ?? '?'} s\n`,
    )
  }
  const markdown = renderMarkdown(report)
  process.stdout.write(`\n${markdown}`)
  if (!args.save) return
  fs.mkdirSync(RESULTS, { recursive: true })
  const suffix = args.only === undefined ? '' : `-${args.only.join('+')}`
  const name = `${report.date.slice(0, 10)}-${report.machine.host}${args.quick ? '-quick' : ''}${suffix}.json`
  const json = `${JSON.stringify(report, null, 2)}\n`
  fs.writeFileSync(new URL(name, RESULTS), json)
  // Only a complete full run becomes "latest": quick and partial runs are too thin to quote.
  const complete = args.only === undefined && !args.quick
  if (complete) {
    fs.writeFileSync(new URL('latest.json', RESULTS), json)
    fs.writeFileSync(new URL('latest.md', RESULTS), markdown)
    updateReadmes(markdown)
  }
  process.stderr.write(
    `wrote bench/results/${name}${complete ? ', latest.json, latest.md, bench/README.md, README.md' : ''}\n`,
  )
  if (Object.values(report.cases).some((c) => c.status === 'error')) process.exitCode = 1
}

await main()
