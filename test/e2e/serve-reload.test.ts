/**
 * Hot reload of `sluice serve`: a policy edit is picked up without a restart (and `/readyz`
 * names the new config); a bad edit keeps the running config, says file and reason, and is
 * counted; an execution that started before a reload finishes on the config it started with;
 * SIGHUP reloads instead of killing the process; a change that needs a restart is refused.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FIXTURES, ROOT, SERVERS } from '../helpers/runtime.js'
import { connect } from './helpers.js'

const MAIN = join(ROOT, 'dist', 'src', 'main.js')
let dir: string
let server: ChildProcess
let url: string
let stderr = ''
let client: Client

// The deny depends on an argument, so the tool stays listed and the call itself is refused.
const policy = (readR1: 'allow' | 'deny') => `rules:
  - id: servers-ok
    effect: allow
    when: tool.server == "slow" || tool.server == "rec"
  - id: read-r1-${readR1}
    effect: ${readR1}
    when: tool.name == "read_item" && args.id == "r1"
`

/** Replaces a file the way editors and ConfigMaps do: write aside, rename over it. */
function replace(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text)
  renameSync(`${path}.tmp`, path)
}

/** Resolves when stderr shows `pattern` after the current end of the log. */
function nextLog(pattern: RegExp): Promise<string> {
  const from = stderr.length
  return new Promise((resolve) => {
    const check = () => {
      const m = pattern.exec(stderr.slice(from))
      if (m) {
        server.stderr!.off('data', check)
        resolve(m[0])
      }
    }
    server.stderr!.on('data', check)
    check()
  })
}

const config = (extra = '') => `servers:
  rec: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(SERVERS.recording)}] }
  slow: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(join(FIXTURES, 'servers/slow.mjs'))}] }
policies: [policy.yaml]
sandbox: { workers: 1 }
${extra}`

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-reload-'))
  writeFileSync(join(dir, 'policy.yaml'), policy('allow'))
  writeFileSync(join(dir, 'sluice.yaml'), config())
  server = spawn(
    process.execPath,
    [MAIN, 'serve', '--config', join(dir, 'sluice.yaml'), '--port', '0', '--insecure-dev'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  server.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8')
  })
  url = (await nextLog(/sluice gateway listening on (\S+)/)).split(' ').at(-1)!
  client = await connect(url)
})

afterAll(async () => {
  await client?.close().catch(() => undefined)
  if (server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve))
    server.kill('SIGTERM')
    await exited
  }
  rmSync(dir, { recursive: true, force: true })
})

/** `sluice config check` on the test's config: exit status, stdout, stderr. */
function check(): { status: number | null; stdout: string; stderr: string } {
  const out = spawnSync(
    process.execPath,
    [MAIN, 'config', 'check', '--config', join(dir, 'sluice.yaml')],
    {
      encoding: 'utf8',
    },
  )
  return { status: out.status, stdout: out.stdout, stderr: out.stderr }
}

async function run(code: string): Promise<Record<string, unknown>> {
  const result = await client.callTool({ name: 'execute_code', arguments: { code } })
  return result.structuredContent as Record<string, unknown>
}

const readItem = `try { return (await tools.rec.read_item({ id: 'r1' })).title } catch (e) { return e.code + ': ' + e.message }`

async function readyConfig(): Promise<string> {
  const res = await fetch(new URL('/readyz', url))
  return ((await res.json()) as { config: string }).config
}

async function reloadErrors(): Promise<number> {
  const text = await (await fetch(new URL('/metrics', url))).text()
  return Number(/^sluice_config_reloads_total\{result="error"\} (\d+)$/m.exec(text)?.[1] ?? 0)
}

/** Resolves once /readyz reports `n` running executions. */
async function untilRunning(n: number): Promise<void> {
  for (;;) {
    const res = await fetch(new URL('/readyz', url))
    const body = (await res.json()) as { executions: { running: number } }
    if (body.executions.running === n) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('sluice serve: hot reload', () => {
  it('a policy edit is in force without a restart, and /readyz names the new config', async () => {
    expect((await run(readItem)).result).toBe('Item r1')
    const before = await readyConfig()
    expect(before).toMatch(/^sha256:[0-9a-f]{64}$/)
    replace(join(dir, 'policy.yaml'), policy('deny'))
    // What config check prints is what /readyz will name once the reload lands.
    const checked = check()
    expect(checked).toEqual({
      status: 0,
      stdout: expect.stringMatching(
        /^ok: \S+sluice\.yaml \(2 servers, 1 policy file; 2 files read, config sha256:[0-9a-f]{64}\)\n$/,
      ),
      stderr: '',
    })
    const next = /sha256:[0-9a-f]{64}/.exec(checked.stdout)![0]
    expect(next).not.toBe(before)
    const reloaded = nextLog(/config reloaded \(file change\)/)
    await reloaded
    expect((await run(readItem)).result).toBe(
      'TOOL_DENIED: rec.read_item is not allowed: denied by rule "read-r1-deny"',
    )
    expect(await readyConfig()).toBe(next)
  })

  it('a broken edit keeps the running config, names file and reason, and is counted', async () => {
    const errors = await reloadErrors()
    const active = await readyConfig()
    const refused = nextLog(
      /^.*"msg":"config reload \(file change\) refused; the running config stays in force".*$/m,
    )
    replace(
      join(dir, 'policy.yaml'),
      'rules:\n  - id: broken\n    effect: allow\n    when: tool.name ==\n',
    )
    const line = JSON.parse(await refused) as { file: string; error: string; activeConfig: string }
    expect(line.file).toBe(join(dir, 'sluice.yaml'))
    expect(line.error).toContain(`invalid policy ${join(dir, 'policy.yaml')}`)
    expect(line.error).toContain('broken')
    expect(line.activeConfig).toBe(active)
    expect(await reloadErrors()).toBe(errors + 1)
    expect(await readyConfig()).toBe(active)
    const checked = check()
    expect(checked.status).toBe(2)
    expect(checked.stderr).toMatch(
      /^sluice config: POLICY_INVALID: invalid policy \S+policy\.yaml: rules\[0\]\.when \(id "broken"\): does not parse: Unexpected token: EOF at line 1, column 13\n$/,
    )
    expect((await run(readItem)).result).toMatch(/^TOOL_DENIED/)
    const restored = nextLog(/config reload \(file change\): nothing changed/)
    replace(join(dir, 'policy.yaml'), policy('deny'))
    await restored
  })

  it('a change that needs a restart is refused whole', async () => {
    const refused = nextLog(/^.*"msg":"config reload \(file change\) refused.*$/m)
    replace(
      join(dir, 'sluice.yaml'),
      config('sandbox: { workers: 2 }\n').replace('sandbox: { workers: 1 }\n', ''),
    )
    const line = JSON.parse(await refused) as { error: string }
    expect(line.error).toBe(
      'sandbox changed: a restart is needed to apply it, so nothing was reloaded',
    )
    const fixed = nextLog(/config reload/)
    replace(join(dir, 'sluice.yaml'), config())
    await fixed
  })

  it('an execution that started before a reload finishes on the config it started with', async () => {
    const reloaded = nextLog(/config reloaded \(file change\)/)
    const running = run(`await tools.slow.slow({ ms: 1500 })\n${readItem}`)
    // The execution starts under the deny policy; the allow lands while it sleeps.
    await untilRunning(1)
    replace(join(dir, 'policy.yaml'), policy('allow'))
    await reloaded
    expect((await run(readItem)).result).toBe('Item r1')
    expect((await running).result).toMatch(/^TOOL_DENIED: rec\.read_item is not allowed/)
  })

  it('SIGHUP reloads (here: nothing changed) and the process stays up', async () => {
    const checked = nextLog(/config reload \(SIGHUP\): nothing changed/)
    server.kill('SIGHUP')
    await checked
    expect(server.exitCode).toBeNull()
    expect((await run('return 1')).result).toBe(1)
  })
})
