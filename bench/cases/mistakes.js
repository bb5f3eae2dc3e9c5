/**
 * Case `mistakes`: how often the first message sluice gives about a model's mistake leads to a
 * working fix. Each case of test/fixtures/model-mistakes.js (the table the tests run) is sent to
 * the built engine with the `store` fixture server: it counts as a success only when the first
 * message (the error, else the first warning) names the expected code, line and fix in under
 * 600 characters, and `fixed`, the code a model writes after reading it, then gives the right
 * answer with no warning. A case whose message does not name the fix is a failure, whatever
 * the fix would have done. Cases that are no mistake must simply give the right answer.
 *
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  CASES,
  POLICY,
  STORE_SERVER,
  TIMEOUT_MS,
  firstMessage,
  firstMessageMatches,
  fixWorks,
} from '../../test/fixtures/model-mistakes.js'
import { SkipError } from '../lib/sluice.js'

export const title = 'mistakes: the first message about a model mistake leads to a working fix'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The built sluice to measure; `SLUICE_BENCH_DIST=<dir>` measures another build (an older commit). */
const DIST = process.env.SLUICE_BENCH_DIST ?? join(ROOT, 'dist')

async function loadEngine() {
  try {
    const { compose } = await import(pathToFileURL(join(DIST, 'src/cli/compose.js')).href)
    const { parseConfig } = await import(pathToFileURL(join(DIST, 'src/config/index.js')).href)
    return { compose, parseConfig }
  } catch (error) {
    throw new SkipError(
      `engine not loadable (${error.code ?? error.message}); run \`npm run build\``,
    )
  }
}

export async function run({ progress }) {
  const { compose, parseConfig } = await loadEngine()
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-mistakes-'))
  writeFileSync(join(dir, 'policy.yaml'), POLICY)
  const config = parseConfig(
    {
      servers: { store: { command: process.execPath, args: [join(ROOT, STORE_SERVER)] } },
      policies: ['policy.yaml'],
      sandbox: { workers: 1, prewarm: 1 },
      limits: { timeoutMs: TIMEOUT_MS },
    },
    join(dir, 'sluice.yaml'),
    dir,
  )
  const runtime = await compose(config, { allowAllWithoutPolicies: false, log: () => undefined })
  const principal = { sub: 'bench', iss: 'bench', scopes: [], claims: {}, authMethod: 'local' }
  const rows = []
  try {
    for (const kase of CASES) {
      const first = await runtime.engine.execute(principal, kase.code)
      const named = firstMessageMatches(kase, first)
      const fixed = await runtime.engine.execute(principal, kase.fixed)
      const works = fixWorks(kase, fixed)
      rows.push({
        id: kase.id,
        mistake: kase.mistake,
        expected: kase.expect,
        first: firstMessage(first) ?? null,
        firstNamesTheFix: named,
        fixWorks: works,
      })
      if (!named || !works)
        progress(
          `${kase.id}: ${named ? 'the fix failed' : 'the first message does not name the fix'}`,
        )
    }
  } finally {
    await runtime.close()
    rmSync(dir, { recursive: true, force: true })
  }
  const mistakes = rows.filter((r) => r.expected.code !== undefined)
  const share = (list) => {
    const good = list.filter((r) => r.firstNamesTheFix && r.fixWorks).length
    return `${good}/${list.length} (${Math.round((100 * good) / Math.max(1, list.length))}%)`
  }
  // Looser, for comparing builds whose messages are worded differently: code and line only.
  const located = mistakes.filter(
    (r) => r.first !== null && r.first.code === r.expected.code && r.first.line === r.expected.line,
  ).length
  const failures = rows.filter((r) => !r.firstNamesTheFix || !r.fixWorks).map((r) => r.id)
  const line = `first error leads to a fix: ${share(mistakes)}`
  process.stderr.write(`  [mistakes] ${line}\n`)
  return {
    metrics: [
      {
        label: `first message leads to a working fix (${mistakes.length} mistakes)`,
        value: share(mistakes),
        note: failures.length === 0 ? 'no failures' : `failed: ${failures.join(', ')}`,
      },
      {
        label: 'first message has the expected code and line (wording of the fix aside)',
        value: `${located}/${mistakes.length} (${Math.round((100 * located) / Math.max(1, mistakes.length))}%)`,
      },
      {
        label: `no mistake: the right answer, no warning (${rows.length - mistakes.length} cases)`,
        value: share(rows.filter((r) => r.expected.code === undefined)),
      },
    ],
    details: { rows },
  }
}
