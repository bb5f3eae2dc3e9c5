/**
 * The demo as a newcomer runs it (README "Talk to the demo"): the built CLI serves
 * `examples/demo/sluice.yaml` with its real upstreams (memory, filesystem, everything), the dev
 * issuer mints a token, and the SDK client lists the tools and runs code against the memory graph
 * and the demo folder. Also `/healthz`, `/readyz` and `/metrics`. The memory file is a temp file
 * (`SLUICE_DEMO_MEMORY_FILE`); the dev issuer keys live in a temp folder named in a config copy,
 * so the test never touches the repository's `.sluice/`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { loadConfig } from '../../src/config/index.js'
import { ROOT } from '../helpers/runtime.js'
import { connect, execute } from './helpers.js'

const MAIN = join(ROOT, 'dist', 'src', 'main.js')
const DEMO = join(ROOT, 'examples', 'demo')

/** The slice of the demo config this test rewrites. */
interface DemoConfig {
  policies: string[]
  lock: { file: string }
  identity: { issuers: [{ jwksFile: string }] }
  audit: { file: string }
}

let dir: string
let configFile: string
let issuerDir: string
let memoryFile: string
let server: ChildProcess | undefined
let url: string
let stderr = ''
const clients: Client[] = []

function sluice(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

function mint(sub: string, scope: string): string {
  const r = sluice(['token', '--dir', issuerDir, '--sub', sub, '--scope', scope])
  expect(r.status, r.stderr).toBe(0)
  return r.stdout.trim()
}

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`)
  dir = mkdtempSync(join(tmpdir(), 'sluice-demo-'))
  issuerDir = join(dir, 'dev-issuer')
  memoryFile = join(dir, 'memory.jsonl')
  expect(sluice(['token', '--init', '--dir', issuerDir]).status).toBe(0)
  // The demo config as shipped, copied to the temp folder (nothing is written under examples/)
  // with its paths made absolute; only the dev issuer's JWKS and the audit file (temp) differ.
  const text = readFileSync(join(DEMO, 'sluice.yaml'), 'utf8').replaceAll(
    '${SLUICE_CONFIG_DIR}',
    DEMO,
  )
  const raw = parse(text) as DemoConfig
  raw.policies = raw.policies.map((p) => resolve(DEMO, p))
  raw.lock.file = resolve(DEMO, raw.lock.file)
  raw.identity.issuers[0].jwksFile = join(issuerDir, 'dev-issuer.jwks.json')
  raw.audit.file = join(dir, 'audit.jsonl')
  configFile = join(dir, 'sluice.yaml')
  writeFileSync(configFile, stringify(raw))

  // --port 0: the OS picks a free port and serve prints the real URL on stderr.
  server = spawn(process.execPath, [MAIN, 'serve', '--config', configFile, '--port', '0'], {
    cwd: ROOT,
    env: { ...process.env, SLUICE_DEMO_MEMORY_FILE: memoryFile },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`sluice serve did not start:\n${stderr}`)),
      50_000,
    )
    server!.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString('utf8')
      const m = /sluice gateway listening on (\S+)/.exec(stderr)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    server!.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`sluice serve exited with ${String(code)}:\n${stderr}`))
    })
  })
})

afterAll(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined)
  if (server !== undefined && server.exitCode === null) {
    const exited = new Promise<void>((resolve) => server!.once('exit', () => resolve()))
    server.kill('SIGTERM')
    await exited
  }
  rmSync(dir, { recursive: true, force: true })
})

async function client(sub = 'alice', scope = 'memory:write'): Promise<Client> {
  const c = await connect(url, { token: mint(sub, scope) })
  clients.push(c)
  return c
}

describe('the demo config', () => {
  it('puts the memory graph in SLUICE_DEMO_MEMORY_FILE, else in examples/demo/.data', () => {
    const memoryEnv = (file: string | undefined) => {
      const saved = process.env['SLUICE_DEMO_MEMORY_FILE']
      if (file === undefined) delete process.env['SLUICE_DEMO_MEMORY_FILE']
      else process.env['SLUICE_DEMO_MEMORY_FILE'] = file
      try {
        const server = loadConfig(join(DEMO, 'sluice.yaml')).servers['memory'] as {
          env: Record<string, string>
        }
        return server.env['MEMORY_FILE_PATH']
      } finally {
        if (saved === undefined) delete process.env['SLUICE_DEMO_MEMORY_FILE']
        else process.env['SLUICE_DEMO_MEMORY_FILE'] = saved
      }
    }
    expect(memoryEnv('/tmp/elsewhere.jsonl')).toBe('/tmp/elsewhere.jsonl')
    expect(memoryEnv(undefined)).toBe(join(DEMO, '.data', 'memory.jsonl'))
  })

  it('agrees with `sluice token` defaults: issuer, audience and the dev issuer JWKS path', () => {
    const config = loadConfig(join(DEMO, 'sluice.yaml'))
    const token = sluice(['token', '--dir', issuerDir, '--sub', 'alice'])
    const claims = JSON.parse(
      Buffer.from(token.stdout.trim().split('.')[1]!, 'base64url').toString('utf8'),
    ) as Record<string, unknown>
    expect(claims['iss']).toBe(config.identity?.issuers[0]?.issuer)
    expect(claims['aud']).toBe(config.identity?.audience)
    expect(config.identity?.issuers[0]?.jwksFile).toBe(
      join(ROOT, '.sluice', 'dev-issuer', 'dev-issuer.jwks.json'),
    )
  })
})

describe('sluice serve --config examples/demo/sluice.yaml', () => {
  it('listens on the port the OS picked and says so', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:(\d+)\/mcp$/)
    expect(url).not.toContain(':0/')
  })

  it('answers /healthz, /readyz with every upstream ready, and /metrics', async () => {
    const base = new URL(url).origin
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' })
    const ready = await fetch(`${base}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      upstreams: {
        memory: { state: 'ready' },
        filesystem: { state: 'ready' },
        everything: { state: 'ready' },
      },
    })
    const metrics = await fetch(`${base}/metrics`)
    expect(metrics.headers.get('content-type')).toContain('text/plain')
    expect(await metrics.text()).toContain('# TYPE sluice_')
  })

  it('refuses a request without a token, pointing at the resource metadata', async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: '{}',
    })
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toContain('resource_metadata=')
  })

  it('lists exactly execute_code and search_tools, with the demo tools in the description', async () => {
    const c = await client()
    const { tools } = await c.listTools()
    expect(tools.map((t) => t.name)).toEqual(['execute_code', 'search_tools'])
    const description = tools[0]?.description ?? ''
    expect(description).toMatch(
      /\ntools\.memory \(9\): add_observations, .*, read_graph, search_nodes\n/,
    )
    expect(description).toMatch(/\ntools\.filesystem \(\d+\): .*list_directory/)
    expect(description).not.toContain('get_env')
  })

  it('runs the README example: writes to and reads the memory graph, lists the demo folder', async () => {
    const c = await client()
    const out = await execute(
      c,
      `await tools.memory.create_entities({ entities: [{ name: 'Ada', entityType: 'person', observations: ['wrote the first program'] }] })
       const graph = await tools.memory.read_graph({})
       const files = await tools.filesystem.list_directory({ path: '.' })
       return { names: graph.entities.map((e) => e.name), files }`,
    )
    expect(out.ok, JSON.stringify(out.error)).toBe(true)
    const result = out.result as { names: string[]; files: { content: string } }
    expect(result.names).toEqual(['Ada'])
    expect(result.files.content).toContain('[FILE] README.md')
    expect(result.files.content).toContain('[DIR] notes')
    expect(out.calls.map((call) => [call.tool, call.decision])).toEqual([
      ['memory.create_entities', 'allow'],
      ['memory.read_graph', 'allow'],
      ['filesystem.list_directory', 'allow'],
    ])
    expect(readFileSync(memoryFile, 'utf8')).toContain('"name":"Ada"')
  })

  it('applies the demo policy: no memory writes without the scope, no get-env', async () => {
    const c = await client('bob', '')
    const out = await execute(
      c,
      `const codes = []
       for (const f of [() => tools.memory.create_entities({ entities: [] }), () => tools.everything['get-env']({})]) {
         try { await f(); codes.push('ran') } catch (e) { codes.push(e.code) }
       }
       return codes`,
    )
    expect(out).toMatchObject({ ok: true })
    // Neither is in this principal's bindings: both exist, and policy refuses both.
    expect(out.result).toEqual(['TOOL_DENIED', 'TOOL_DENIED'])
  })
})
