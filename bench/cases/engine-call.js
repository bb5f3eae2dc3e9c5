/**
 * Case `engine-call`: the cost of one awaited inner call through the real `Engine` (built
 * `dist/`, composed as `sluice serve` composes it), with everything a call pays for on the
 * host: the exact lookup, the argument schema, a CEL policy whose condition reads the call's
 * `args`, the write-ahead audit record and the result record (hash chain), a span per call with
 * the OpenTelemetry SDK registered (in-memory exporter), the result mapping. Two scripts,
 * interleaved, identical but for the loop count: 200 sequential
 * `await tools.store['get-sum']({ a: i, b: 2 })` and 0; the cost per call is
 * (p50 of 200 − p50 of 0) / 200.
 *
 * The upstream is the `store` fixture over stdio; its tools are listed from the real process.
 * For the rows marked "in-process upstream" its `callTool` answers at once in this process
 * with what the fixture answers, so the figure is the gateway's own path, not the stdio round
 * trip and the fixture's SDK; the "stdio upstream" row adds those. Each row says whether the
 * audit fsyncs each record.
 *
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { performance } from 'node:perf_hooks'
import { summarize } from '../lib/stats.js'
import { SkipError } from '../lib/sluice.js'

export const title = 'per inner call through the Engine (policy, audit, span), 200 calls vs 0'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DIST = process.env.SLUICE_BENCH_DIST ?? join(ROOT, 'dist')
const STORE_SERVER = join(ROOT, 'test/fixtures/servers/store.mjs')
const CALLS = 200

const POLICY = `rules:
  - id: sums-of-small-numbers
    effect: allow
    when: tool.server == "store" && tool.name == "get-sum" && args.a < 1000 && args.b < 1000
`
const script = (count) => `let last = 0
for (let i = 0; i < ${count}; i++) last = (await tools.store['get-sum']({ a: i % 500, b: 2 })) as number
return last`

async function load(file) {
  return import(pathToFileURL(join(DIST, file)).href)
}

async function loadEngine() {
  try {
    const { compose } = await load('src/cli/compose.js')
    const { parseConfig } = await load('src/config/index.js')
    const { Upstream } = await load('src/upstream/upstream.js')
    const { startTelemetry } = await load('src/telemetry/sdk.js')
    return { compose, parseConfig, Upstream, startTelemetry }
  } catch (error) {
    throw new SkipError(
      `engine not loadable (${error.code ?? error.message}); run \`npm run build\``,
    )
  }
}

/** Composes a runtime with the audit fsyncing or not; the caller closes it. */
async function runtimeWith({ compose, parseConfig }, dir, fsync) {
  const config = parseConfig(
    {
      servers: { store: { command: process.execPath, args: [STORE_SERVER] } },
      policies: ['policy.yaml'],
      audit: { file: `audit-${fsync ? 'fsync' : 'nofsync'}.jsonl`, fsync },
      sandbox: { workers: 2, prewarm: 1 },
      limits: { maxToolCalls: CALLS },
    },
    join(dir, 'sluice.yaml'),
    dir,
  )
  return compose(config, { allowAllWithoutPolicies: false, log: () => undefined })
}

export async function run({ quick, progress }) {
  const parts = await loadEngine()
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-engine-'))
  writeFileSync(join(dir, 'policy.yaml'), POLICY)
  const telemetry = await parts.startTelemetry({ serviceName: 'sluice-bench', exporter: 'memory' })
  // The fixture's own answer to get-sum, given at once: the in-process upstream.
  const realCallTool = parts.Upstream.prototype.callTool
  let inProcess = true
  parts.Upstream.prototype.callTool = function callTool(name, args, options) {
    if (!inProcess || name !== 'get-sum') return realCallTool.call(this, name, args, options)
    return Promise.resolve({ content: [{ type: 'text', text: String(args.a + args.b) }] })
  }
  const runtimes = []
  try {
    const plain = await runtimeWith(parts, dir, false)
    runtimes.push(plain)
    const durable = await runtimeWith(parts, dir, true)
    runtimes.push(durable)
    const principal = { sub: 'bench', iss: 'bench', scopes: [], claims: {}, authMethod: 'local' }
    const many = script(CALLS)
    const none = script(0)
    const once = async (rt, code) => {
      const start = performance.now()
      const r = await rt.engine.execute(principal, code)
      const ms = performance.now() - start
      const expected = code === many ? ((CALLS - 1) % 500) + 2 : 0
      if (r.error !== undefined || r.result !== expected)
        throw new Error(`engine execution failed: ${JSON.stringify(r.error ?? r.result)}`)
      return ms
    }
    const rows = [
      { id: 'in-process upstream, audit without fsync', rt: plain, local: true },
      {
        id: 'in-process upstream, audit with fsync (each decision and end synced)',
        rt: durable,
        local: true,
      },
      { id: 'stdio upstream (fixture process), audit without fsync', rt: plain, local: false },
    ].map((r) => ({ ...r, many: [], none: [] }))
    for (const r of rows) {
      inProcess = r.local
      for (let i = 0; i < 5; i++) {
        await once(r.rt, many)
        await once(r.rt, none)
      }
    }
    const n = quick ? 30 : 150
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < rows.length; k++) {
        const r = rows[(i + k) % rows.length]
        inProcess = r.local
        // Alternate which goes first so neither always follows the other.
        const order = i % 2 === 0 ? [many, none] : [none, many]
        for (const code of order) (code === many ? r.many : r.none).push(await once(r.rt, code))
      }
      telemetry.memoryExporter?.reset()
      if (i % 50 === 49) progress(`${i + 1}/${n}`)
    }
    const metrics = []
    const details = {}
    for (const r of rows) {
      const sMany = summarize(r.many)
      const sNone = summarize(r.none)
      const perCallUs = ((sMany.p50 - sNone.p50) / CALLS) * 1000
      const perCallMeanUs = ((sMany.mean - sNone.mean) / CALLS) * 1000
      metrics.push(
        { label: `${r.id}: ${CALLS} calls, wall`, stats: sMany },
        { label: `${r.id}: 0 calls, wall`, stats: sNone },
      )
      const row = {
        label: `engine: per call incl. policy, audit, span (${r.id}) (Δp50 / ${CALLS})`,
        value: `${perCallUs.toFixed(1)} µs (from means: ${perCallMeanUs.toFixed(1)} µs)`,
      }
      if (r.local && r.rt === plain) Object.assign(row, { target: '≤ 50 µs', met: perCallUs <= 50 })
      metrics.push(row)
      details[r.id] = { perCallUs, perCallMeanUs }
    }
    return { metrics, details: { ...details, calls: CALLS } }
  } finally {
    parts.Upstream.prototype.callTool = realCallTool
    for (const rt of runtimes) await rt.close()
    await telemetry.shutdown?.()
    rmSync(dir, { recursive: true, force: true })
  }
}
