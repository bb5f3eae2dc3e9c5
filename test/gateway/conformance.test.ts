/**
 * The official MCP conformance suite (server mode) against a real `sluice serve`: the built CLI,
 * the real engine and sandbox, direct mode, and a real upstream, the fixture
 * test/fixtures/servers/conformance.mjs, which has every tool, prompt and resource the scenarios
 * call (over stdio, allowed by a policy). Two runs on the same process:
 *
 * - 0.1.16, the newest release, `--suite all`: the 2025-11-25 wire with sessions.
 * - 0.2.0-alpha.12, the newest pre-release, `--requirements 2026-07-28`: the stateless 2026-07-28
 *   wire (no stable release has those scenarios yet).
 *
 * Each has a baseline of expected failures with the reason on each line; everything else must
 * pass, and the suite itself fails the run when a baseline entry passes. Both versions need
 * Node 22 (`fs.globSync`): on Node 20 the suite runs on `SLUICE_CONFORMANCE_NODE` (set by
 * .ci/run from scripts/node.sh; when set it must exist) or on a Node ≥ 22 found in .ci/.node/.
 * Without either this file is skipped and says how to get one. sluice itself runs on the Node of
 * the test.
 *
 * Run inside vitest on purpose: the suite prints "Total: N passed, N failed" lines that CI would
 * read as test counts; here only vitest's own summary reaches CI.
 *
 * The suite has no token option in server mode, so the gateway runs with `--insecure-dev` (no
 * identity, the local principal), which `sluice serve` allows on loopback only; it binds
 * 127.0.0.1. Auth is covered by app.test.ts and the e2e tests. Everything written (config,
 * policy, audit) lives in a temp folder.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { startServe, stopChild, type ServeProcess } from '../e2e/clients/harness.js'
import { FIXTURES, ROOT } from '../helpers/runtime.js'

interface Suite {
  /** What the describe block says. */
  title: string
  /** The package folder in node_modules and the version it must hold. */
  dir: string
  version: string
  args: string[]
  /** Relative to the repository root. */
  baseline: string
  /** Scenarios that must run and pass with at least one successful check. */
  passing: string[]
  /** Scenarios that must run and come out with no verdict at all (only INFO checks). */
  noVerdict?: string[]
}

const SUITES: Suite[] = [
  {
    title: '0.1.16, all server scenarios (2025-11-25, sessions)',
    dir: '@modelcontextprotocol/conformance',
    version: '0.1.16',
    args: ['--suite', 'all'],
    baseline: 'test/gateway/conformance-baseline.yml',
    passing: [
      'server-initialize',
      'logging-set-level',
      'ping',
      'tools-list',
      'server-sse-multiple-streams',
      'resources-list',
      'prompts-list',
      'dns-rebinding-protection',
    ],
  },
  {
    title: '0.2.0-alpha.12, requirements of 2026-07-28 (stateless)',
    dir: 'mcp-conformance-2026-07-28',
    version: '0.2.0-alpha.12',
    args: ['--requirements', '2026-07-28'],
    baseline: 'test/gateway/conformance-baseline-2026-07-28.yml',
    passing: [
      'tools-list',
      'server-sse-multiple-streams',
      'resources-list',
      'prompts-list',
      'dns-rebinding-protection',
      'caching',
      'input-required-result-unsupported-methods',
      'input-required-result-validate-input',
      'http-header-validation',
    ],
    // The suite skips it (its harness awaits a subscriptions/listen rewrite), whatever the server.
    noVerdict: ['tasks-status-notifications'],
  },
]

/** A Node that runs the suite (≥ 22), or why there is none. */
function suiteNode(): { bin: string } | { missing: string } {
  if (Number(process.versions.node.split('.')[0]) >= 22) return { bin: process.execPath }
  const fromEnv = process.env['SLUICE_CONFORMANCE_NODE']
  // Set (CI): it must exist, so a broken install fails instead of skipping.
  if (fromEnv !== undefined && fromEnv !== '') return { bin: fromEnv }
  const installed = join(ROOT, '.ci', '.node')
  const found = existsSync(installed)
    ? readdirSync(installed)
        .filter((v) => Number(v.split('.')[0]) >= 22)
        .map((v) => join(installed, v, 'node_modules/node/bin/node'))
        .find((bin) => existsSync(bin))
    : undefined
  return found !== undefined
    ? { bin: found }
    : { missing: 'needs Node 22: bash scripts/node.sh 22.23.3, or npm run test:conformance' }
}

const node = suiteNode()

/** The scenarios of a baseline file, each with the reason its line gives. */
function readBaseline(file: string): Map<string, string> {
  const entries = new Map<string, string>()
  for (const line of readFileSync(join(ROOT, file), 'utf8').split('\n')) {
    const m = /^ {2}- ([a-z0-9-]+)(?: # (.+))?$/.exec(line)
    if (m) entries.set(m[1]!, m[2] ?? '')
  }
  return entries
}

/** `✓ name: N passed, M failed` lines of the suite's summary. */
function summary(output: string): Map<string, { ok: boolean; passed: number; failed: number }> {
  const rows = new Map<string, { ok: boolean; passed: number; failed: number }>()
  const text = stripVTControlCharacters(output)
  const start = text.lastIndexOf('=== SUMMARY ===')
  for (const m of text
    .slice(start)
    .matchAll(/^([✓✗]) ([a-z0-9-]+): (\d+) passed, (\d+) failed$/gm)) {
    rows.set(m[2]!, { ok: m[1] === '✓', passed: Number(m[3]), failed: Number(m[4]) })
  }
  return rows
}

function run(
  bin: string,
  script: string,
  args: string[],
): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    execFile(
      bin,
      [script, ...args],
      { cwd: ROOT, timeout: 50_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
        done({ code, output: `${stdout}\n${stderr}` })
      },
    )
  })
}

let dir: string
let serve: ServeProcess

describe.skipIf('missing' in node)(
  `MCP conformance against sluice serve${'missing' in node ? ` (skipped: ${node.missing})` : ''}`,
  () => {
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-conformance-'))
      writeFileSync(
        join(dir, 'policy.yaml'),
        stringify({
          rules: [{ id: 'conformance-fixture', effect: 'allow', when: 'tool.server == "conf"' }],
        }),
      )
      const configFile = join(dir, 'sluice.yaml')
      writeFileSync(
        configFile,
        stringify({
          servers: {
            conf: { command: process.execPath, args: [join(FIXTURES, 'servers/conformance.mjs')] },
          },
          policies: ['policy.yaml'],
          gateway: { directMode: true },
          audit: { file: join(dir, 'audit.jsonl') },
          sandbox: { workers: 1, prewarm: 1 },
        }),
      )
      serve = await startServe(configFile, ['--insecure-dev'])
      // The fixture is up and its tools are listed before the suite runs, so that a failure
      // below is about conformance, not about a slow upstream start.
      const client = new Client({ name: 'conformance-check', version: '0.0.1' })
      await client.connect(new StreamableHTTPClientTransport(new URL(serve.url)))
      const { tools } = await client.listTools()
      await client.close()
      expect(tools.map((t) => t.name)).toContain('conf__test_simple_text')
    }, 30_000)
    afterAll(async () => {
      if (serve !== undefined) await stopChild(serve.child)
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
    })

    for (const suite of SUITES) {
      it(suite.title, { timeout: 60_000 }, async () => {
        if (!('bin' in node)) return
        expect(existsSync(node.bin), `no Node at ${node.bin} (SLUICE_CONFORMANCE_NODE)`).toBe(true)
        const pkg = join(ROOT, 'node_modules', suite.dir)
        expect(JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).version).toBe(
          suite.version,
        )
        const baseline = readBaseline(suite.baseline)
        for (const [scenario, reason] of baseline) expect(reason, scenario).not.toBe('')

        const { code, output } = await run(node.bin, join(pkg, 'dist/index.js'), [
          'server',
          '--url',
          serve.url,
          ...suite.args,
          '--expected-failures',
          suite.baseline,
        ])
        // The suite's own check: every scenario outside the baseline passed without a warning,
        // every scenario in it failed (a baseline entry that passes fails the run).
        expect(output, output).toContain('Baseline check passed')
        expect(code, output).toBe(0)

        // Every scenario that ran is accounted for, and the ones that apply really passed (a
        // scenario with only INFO checks shows as "0 passed, 0 failed").
        const rows = summary(output)
        const noVerdict = suite.noVerdict ?? []
        expect([...rows.keys()].sort(), output).toEqual(
          [...suite.passing, ...noVerdict, ...baseline.keys()].sort(),
        )
        for (const scenario of suite.passing) {
          expect(rows.get(scenario), scenario).toMatchObject({ ok: true, failed: 0 })
          expect(rows.get(scenario)!.passed, scenario).toBeGreaterThan(0)
        }
        for (const scenario of noVerdict)
          expect(rows.get(scenario), scenario).toEqual({ ok: true, passed: 0, failed: 0 })
      })
    }
  },
)
