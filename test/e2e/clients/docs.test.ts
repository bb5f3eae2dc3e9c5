/**
 * Every snippet of docs/clients.md, against a live gateway (harness.ts), with the doc's
 * placeholders replaced (snippets.ts):
 *
 * - Claude Desktop's file: `command` + `args` (+ `env`) started exactly as written, since Claude
 *   Desktop expands nothing; the remote one is `npx -y mcp-remote …`, which here finds the pinned
 *   devDependency (npx downloads it on a user's first run).
 * - Claude Code, Cursor and VS Code files: read by sluice's own client-config loader, which
 *   expands `${VAR}`, `${env:VAR}` and `${input:ID}` as those clients do, then the server entry is
 *   started (stdio) or connected to (HTTP, with its headers).
 * - Shell lines: run by bash; `claude` is a stub on PATH that records its arguments, which are
 *   then read as `claude mcp add` would read them.
 * - Code: each block is written to a temp folder as an ES module beside a node_modules link and
 *   run with node; its stdout must be the `// → …` lines of the block.
 *
 * Nothing runs against the internet: every URL is the gateway's or the test IdP's, on 127.0.0.1,
 * and npm's update check is off for npx.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { inputEnvName, loadConfig } from '../../../src/config/index.js'
import { ROOT } from '../../helpers/runtime.js'
import { RESULT, RESULT_TEXT, startSluice, type Sluice } from './harness.js'
import { checkHttp, checkStdio, expectedOutput, readSnippets, run, substitute } from './snippets.js'

const snippets = readSnippets()
const MCP_USE_MODULES = join(ROOT, 'test/e2e/clients/mcp-use/node_modules')

let sluice: Sluice
let tmp: string
let home: string
beforeAll(async () => {
  sluice = await startSluice()
  tmp = mkdtempSync(join(tmpdir(), 'sluice-docs-'))
  home = join(tmp, 'home')
  mkdirSync(home)
})
afterAll(async () => {
  await sluice?.close()
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
})

function text(id: string): string {
  const snippet = snippets.get(id)
  if (snippet === undefined) throw new Error(`docs/clients.md has no clients:${id} snippet`)
  return substitute(snippet.text, sluice)
}

/** What a client's child gets: PATH, a temp HOME, no npm update check. */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '',
    HOME: home,
    npm_config_update_notifier: 'false',
    ...extra,
  }
}

interface DesktopEntry {
  command: string
  args: string[]
  env?: Record<string, string>
}

it('docs/clients.md has exactly the snippets this test checks', () => {
  expect([...snippets.keys()].sort()).toEqual(
    [
      'claude-desktop-stdio',
      'claude-desktop-remote',
      'claude-code-stdio',
      'claude-code-http',
      'claude-code-cli',
      'cursor-stdio',
      'cursor-http',
      'vscode-stdio',
      'vscode-http',
      'inspector-cli',
      'sdk-v1-http',
      'sdk-v1-stdio',
      'sdk-v2',
      'ai-sdk',
      'langchain',
      'mcp-use',
    ].sort(),
  )
})

describe('Claude Desktop: claude_desktop_config.json, started as written', () => {
  function entry(id: string): DesktopEntry {
    const file = JSON.parse(text(id)) as { mcpServers: Record<string, DesktopEntry> }
    expect(Object.keys(file.mcpServers)).toEqual(['sluice'])
    return file.mcpServers['sluice']!
  }

  it('clients:claude-desktop-stdio runs sluice stdio', async () => {
    const { command, args } = entry('claude-desktop-stdio')
    await checkStdio({ command, args, env: childEnv() })
  })

  it('clients:claude-desktop-remote runs mcp-remote to sluice serve with the bearer header', async () => {
    const { command, args, env } = entry('claude-desktop-remote')
    expect(command).toBe('npx')
    await checkStdio({
      command,
      args,
      cwd: ROOT,
      env: childEnv({ ...env, MCP_REMOTE_CONFIG_DIR: mkdtempSync(join(tmp, 'mcp-auth-')) }),
    })
  })
})

/** Sets variables for the loader, as the client's environment would have them; restores them. */
async function withEnv(vars: Record<string, string>, fn: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
  Object.assign(process.env, vars)
  try {
    await fn()
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
}

describe('Claude Code, Cursor, VS Code: the file read by sluice’s client-config loader', () => {
  const cases: Array<[string, string, 'stdio' | 'http', () => Record<string, string>]> = [
    ['claude-code-stdio', '.mcp.json', 'stdio', () => ({})],
    ['cursor-stdio', '.cursor/mcp.json', 'stdio', () => ({})],
    ['vscode-stdio', '.vscode/mcp.json', 'stdio', () => ({})],
    ['claude-code-http', '.mcp.json', 'http', () => ({ SLUICE_TOKEN: sluice.token })],
    ['cursor-http', '.cursor/mcp.json', 'http', () => ({ SLUICE_TOKEN: sluice.token })],
    [
      'vscode-http',
      '.vscode/mcp.json',
      'http',
      () => ({ [inputEnvName('sluice-token')]: sluice.token }),
    ],
  ]
  it.each(cases)('clients:%s as %s (%s)', async (id, path, kind, vars) => {
    const file = join(mkdtempSync(join(tmp, 'project-')), path)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, text(id))
    await withEnv(vars(), async () => {
      const warnings: string[] = []
      const config = loadConfig(file, { onWarning: (m) => warnings.push(m) })
      expect(warnings).toEqual([])
      expect(Object.keys(config.servers)).toEqual(['sluice'])
      const server = config.servers['sluice']!
      if (kind === 'http') {
        expect(server).toMatchObject({ url: sluice.url })
        const headers = (server as { headers?: Record<string, string> }).headers ?? {}
        expect(headers).toEqual({ Authorization: `Bearer ${sluice.token}` })
        await checkHttp(sluice.url, headers)
      } else {
        const { command, args } = server as { command: string; args: string[] }
        expect(command).toBe('node')
        await checkStdio({ command, args, env: childEnv() })
      }
    })
  })
})

/** Reads `claude mcp add [options] <name> <commandOrUrl> [args...]`, `--` ending the options. */
function claudeMcpAdd(argv: string[]): {
  name: string
  transport: string
  headers: Record<string, string>
  target: string[]
} {
  expect(argv.slice(0, 2)).toEqual(['mcp', 'add'])
  const positional: string[] = []
  const headers: Record<string, string> = {}
  let transport = 'stdio'
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      positional.push(...argv.slice(i + 1))
      break
    }
    if (arg === '--transport' || arg === '-t') transport = argv[++i]!
    else if (arg === '--scope' || arg === '-s') i++
    else if (arg === '--header' || arg === '-H') {
      const header = argv[++i]!
      const colon = header.indexOf(':')
      headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim()
    } else if (arg.startsWith('-')) throw new Error(`unexpected claude option ${arg}`)
    else positional.push(arg)
  }
  return { name: positional[0]!, transport, headers, target: positional.slice(1) }
}

describe('shell lines, run by bash', () => {
  it('clients:claude-code-cli adds sluice stdio and the remote gateway; both work', async () => {
    const bin = join(tmp, 'bin')
    mkdirSync(bin, { recursive: true })
    const log = join(tmp, 'claude-argv.jsonl')
    writeFileSync(
      join(bin, 'claude'),
      `#!${process.execPath}\nrequire('node:fs').appendFileSync(process.env.CLAUDE_ARGV, JSON.stringify(process.argv.slice(2)) + '\\n')\n`,
      { mode: 0o755 },
    )
    const r = await run('bash', ['-euc', text('claude-code-cli')], {
      cwd: ROOT,
      env: childEnv({
        PATH: `${bin}:${process.env['PATH'] ?? ''}`,
        CLAUDE_ARGV: log,
        SLUICE_TOKEN: sluice.token,
      }),
    })
    expect(r.code, r.stderr).toBe(0)
    const calls = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => claudeMcpAdd(JSON.parse(l) as string[]))
    expect(calls.map((c) => [c.name, c.transport])).toEqual([
      ['sluice', 'stdio'],
      ['sluice-remote', 'http'],
    ])
    const [stdio, remote] = calls as [(typeof calls)[0], (typeof calls)[0]]
    await checkStdio({ command: stdio.target[0]!, args: stdio.target.slice(1), env: childEnv() })
    expect(remote.target).toEqual([sluice.url])
    expect(remote.headers).toEqual({ Authorization: `Bearer ${sluice.token}` })
    await checkHttp(sluice.url, remote.headers)
  })

  it('clients:inspector-cli calls execute_code on sluice serve', async () => {
    const r = await run('bash', ['-euc', text('inspector-cli')], {
      cwd: ROOT,
      env: childEnv({ SLUICE_TOKEN: sluice.token }),
    })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      content: [{ type: 'text', text: RESULT_TEXT }],
      structuredContent: RESULT,
    })
  })
})

/** Writes the block as `snippet.mjs` beside a node_modules link, runs it, checks its output. */
async function runCode(id: string, modules: string, extraEnv: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmp, `${id}-`))
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
  symlinkSync(modules, join(dir, 'node_modules'), 'dir')
  const code = text(id)
  writeFileSync(join(dir, 'snippet.mjs'), code)
  const r = await run(process.execPath, ['snippet.mjs'], {
    cwd: dir,
    env: childEnv({ SLUICE_TOKEN: sluice.token, ...extraEnv }),
  })
  expect(r.code, r.stderr).toBe(0)
  expect(r.stdout.trimEnd().split('\n')).toEqual(expectedOutput(code))
}

describe('code, run with node', () => {
  it.each(['sdk-v1-http', 'sdk-v1-stdio', 'sdk-v2', 'ai-sdk', 'langchain'])(
    'clients:%s prints what the doc says',
    async (id) => {
      await runCode(id, join(ROOT, 'node_modules'))
    },
  )

  it.skipIf(!existsSync(MCP_USE_MODULES))(
    'clients:mcp-use prints what the doc says, and writes nothing to HOME (npm run test:clients:mcp-use installs it)',
    async () => {
      // A HOME of its own: npx (above) leaves its cache in the shared one.
      const mcpUseHome = mkdtempSync(join(tmp, 'mcp-use-home-'))
      await runCode('mcp-use', MCP_USE_MODULES, { HOME: mcpUseHome })
      expect(readdirSync(mcpUseHome)).toEqual([])
    },
  )
})
