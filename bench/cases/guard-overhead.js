/**
 * Case `guard-overhead`: what `guardrails` add to one execution through the real engine
 * (`compose` from `dist/`, no upstream) that returns about 10 KiB, which the model boundary
 * tokenises. Two results:
 * - typical: the `guard` case's 10 KiB of order records (ids, timestamps, digests, URLs, prose)
 *   with 20 personal values and secrets mixed in, returned as a literal;
 * - dense: 58 customer rows the script builds, 116 values (an e-mail or phone number in every
 *   row, and a card, IBAN or IP address), 88 of them distinct: a CRM export.
 * Three engines in one process, measured interleaved with the order rotated each round (A, B, C,
 * then B, C, A, …, both results in turn) so drift and position hit each alike (an A/A check of
 * two engines with guardrails off this way differs by ±2% at p50 here; in a fixed order the
 * second engine read 2% slow): guardrails off, `pii: {}` (tokenise), and `pii: {}` +
 * `spotlight: true` (no tool data, so no fence: the detector and vault are the cost). Wall time
 * around `engine.execute`.
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { summarize } from '../lib/stats.js'
import { benignJson, withPii } from './guard.js'

export const title = 'guardrails on an execution with a 10 KiB result (off vs tokenize)'

const ROWS = 58
const DENSE = `const rows = []
for (let i = 0; i < ${ROWS}; i++) {
  rows.push({
    id: 'cust-' + i,
    note: 'Order shipped; customer asked about delivery windows and invoice copies for the quarter.',
    contact: i % 2 === 0 ? 'user' + i + '@example.com' : 'call +44 20 7946 0' + String(100 + i),
    extra: i % 4 === 0 ? 'card 4111 1111 1111 1111' : i % 4 === 1 ? 'iban DE89 3704 0044 0532 0130 00' : 'from 192.0.2.' + i,
  })
}
return rows`
const TYPICAL = `return ${withPii(benignJson(10 * 1024 - 600), 20)}`
const RESULTS = [
  { label: 'typical (20 values)', script: TYPICAL },
  { label: 'dense (116 values)', script: DENSE },
]
const VARIANTS = [
  { label: 'guardrails off', guardrails: undefined },
  { label: 'guardrails.pii tokenize', guardrails: { pii: {} } },
  { label: 'pii tokenize + spotlight', guardrails: { pii: {}, spotlight: true } },
]

async function engineWith(guardrails) {
  const { compose } = await import('../../dist/src/cli/compose.js')
  const { parseConfig } = await import('../../dist/src/config/index.js')
  const config = parseConfig(
    { sandbox: { workers: 1, prewarm: 1 }, ...(guardrails ? { guardrails } : {}) },
    '<bench>',
    process.cwd(),
  )
  return compose(config, { allowAllWithoutPolicies: true, log: () => undefined })
}

export async function run({ quick, progress }) {
  const n = quick ? 200 : 1500
  const runtimes = []
  try {
    for (const v of VARIANTS) runtimes.push(await engineWith(v.guardrails))
    const principal = { sub: 'bench', iss: 'local', scopes: [], claims: {}, authMethod: 'local' }
    const once = async (rt, script) => {
      const start = performance.now()
      const out = await rt.engine.execute(principal, script, { session: 'bench' })
      const ms = performance.now() - start
      if (!out.ok) throw new Error(`execution failed: ${JSON.stringify(out.error)}`)
      return { ms, bytes: Buffer.byteLength(JSON.stringify(out.result)) }
    }
    const first = []
    for (const r of RESULTS) first.push(await Promise.all(runtimes.map((rt) => once(rt, r.script))))
    for (let i = 0; i < (quick ? 30 : 100); i++)
      for (const r of RESULTS) for (const rt of runtimes) await once(rt, r.script)
    const wall = RESULTS.map(() => runtimes.map(() => []))
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < RESULTS.length; r++)
        for (let k = 0; k < runtimes.length; k++) {
          // The order rotates each round: the engine that runs right after another shares the
          // cores with that one's worker building its next instance, so no variant always does.
          const v = (i + k) % runtimes.length
          wall[r][v].push((await once(runtimes[v], RESULTS[r].script)).ms)
        }
      if (i % 500 === 499) progress(`${i + 1}/${n}`)
    }
    const metrics = []
    RESULTS.forEach((result, r) => {
      const stats = wall[r].map(summarize)
      const added = (v) => stats[v].p50 / stats[0].p50 - 1
      VARIANTS.forEach((v, i) => {
        metrics.push({
          label: `${result.label}: ${v.label}, wall (result ${(first[r][i].bytes / 1024).toFixed(1)} KiB)`,
          stats: stats[i],
          ...(i === 0
            ? {}
            : {
                target: 'adds ≤ 5% at p50',
                met: added(i) <= 0.05,
                note: `adds ${(added(i) * 100).toFixed(1)}% at p50`,
              }),
        })
      })
    })
    return {
      metrics,
      details: {
        resultBytes: Object.fromEntries(
          RESULTS.map((r, i) => [r.label, first[i].map((f) => f.bytes)]),
        ),
        executions: n,
      },
    }
  } finally {
    for (const rt of runtimes) await rt.close()
  }
}
