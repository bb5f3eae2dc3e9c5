/**
 * Client config files as `--config`, unchanged: one realistic file per client under
 * test/fixtures/client-configs, plus the translations, expansions, warnings and refusals they
 * rely on.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  expandVars,
  inputEnvName,
  loadConfig,
  parseConfig,
  type Config,
  type LoadOptions,
} from '../../src/config/index.js'
import { failure } from '../helpers/errors.js'

const FIXTURES = resolve(import.meta.dirname, '../fixtures/client-configs')
const dir = mkdtempSync(join(tmpdir(), 'sluice-clients-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Variables the fixtures reference; set per test, restored after. */
const saved = new Map<string, string | undefined>()
function setEnv(values: Record<string, string>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!saved.has(k)) saved.set(k, process.env[k])
    process.env[k] = v
  }
}
function unsetEnv(...names: string[]): void {
  for (const k of names) {
    if (!saved.has(k)) saved.set(k, process.env[k])
    delete process.env[k]
  }
}
beforeEach(() => saved.clear())
afterEach(() => {
  for (const [k, v] of saved) {
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
  }
})

/** Loads a file, collecting the warnings instead of writing them to stderr. */
function load(file: string): { config: Config; warnings: string[] } {
  const warnings: string[] = []
  const options: LoadOptions = { onWarning: (message) => warnings.push(message) }
  return { config: loadConfig(file, options), warnings }
}

function inline(input: unknown): { config: Config; warnings: string[] } {
  const warnings: string[] = []
  return {
    config: parseConfig(input, '<inline>', dir, { onWarning: (m) => warnings.push(m) }),
    warnings,
  }
}

describe('client config files', () => {
  it('loads a Claude Desktop claude_desktop_config.json: stdio servers, mcp-remote as a command', () => {
    const { config, warnings } = load(join(FIXTURES, 'claude-desktop.json'))
    expect(Object.keys(config.servers)).toEqual(['filesystem', 'memory', 'linear'])
    expect(config.servers.filesystem).toMatchObject({
      command: 'npx',
      args: [
        '-y',
        '@modelcontextprotocol/server-filesystem',
        '/Users/alex/Desktop',
        '/Users/alex/Downloads',
      ],
    })
    expect(config.servers.memory).toMatchObject({
      env: { MEMORY_FILE_PATH: '/Users/alex/.claude/memory.jsonl' },
    })
    expect(config.servers.linear).toMatchObject({
      args: ['-y', 'mcp-remote', 'https://mcp.linear.app/sse'],
    })
    expect(warnings).toEqual([
      `config ${join(FIXTURES, 'claude-desktop.json')}: ignored client keys: globalShortcut (top level), preferences (top level)`,
    ])
  })

  it('loads a Claude Code .mcp.json: type stdio/http/sse, ${VAR} and ${VAR:-default} in args, url and headers', () => {
    setEnv({ API_KEY: 'k-123' })
    unsetEnv('DATABASE_URL', 'API_BASE_URL')
    const { config, warnings } = load(join(FIXTURES, 'claude-code.mcp.json'))
    expect(config.servers.postgres).toMatchObject({
      type: 'stdio',
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-postgres', 'postgresql://localhost/dev'],
    })
    expect(config.servers.api).toMatchObject({
      type: 'http',
      url: 'https://api.example.com/mcp',
      headers: { Authorization: 'Bearer k-123' },
    })
    expect(config.servers.legacy).toMatchObject({
      type: 'sse',
      url: 'http://127.0.0.1:8931/sse',
      headers: { 'X-Tenant': 'acme' },
    })
    expect(warnings).toEqual([])
  })

  it('loads a Cursor mcp.json: ${env:VAR}, ${workspaceFolder}, envFile, a url without type', () => {
    setEnv({ GITHUB_TOKEN: 'ghp-1', CONTEXT7_API_KEY: 'c7-1' })
    const { config, warnings } = load(join(FIXTURES, 'cursor.mcp.json'))
    expect(config.servers.github).toMatchObject({
      command: 'docker',
      env: { GITHUB_PERSONAL_ACCESS_TOKEN: 'ghp-1' },
    })
    expect(config.servers.notes).toMatchObject({
      args: [join(FIXTURES, 'tools/notes-server.js')],
      env: { NOTES_DIR: '/tmp/notes', NOTES_MODE: 'read-only' },
    })
    expect(config.servers.notes).not.toHaveProperty('envFile')
    expect(config.servers.context7).toMatchObject({
      url: 'https://mcp.context7.com/mcp',
      headers: { CONTEXT7_API_KEY: 'c7-1' },
    })
    expect(config.servers.context7).not.toHaveProperty('type')
    expect(warnings).toEqual([])
  })

  it('loads a VS Code .vscode/mcp.json: servers + inputs, ${input:ID} from SLUICE_INPUT_<ID>, ${workspaceFolder} is the project', () => {
    setEnv({ SLUICE_INPUT_PERPLEXITY_KEY: 'pplx-1', SLUICE_INPUT_API_TOKEN: 'tok-1' })
    const file = join(FIXTURES, 'vscode/.vscode/mcp.json')
    const { config, warnings } = load(file)
    expect(Object.keys(config.servers)).toEqual([
      'perplexity',
      'workspaceFiles',
      'internal',
      'legacySearch',
    ])
    expect(config.servers.perplexity).toMatchObject({
      type: 'stdio',
      env: { PERPLEXITY_API_KEY: 'pplx-1' },
    })
    expect(config.servers.workspaceFiles).toMatchObject({
      args: ['-y', '@modelcontextprotocol/server-filesystem', join(FIXTURES, 'vscode')],
    })
    expect(config.servers.internal).toMatchObject({
      type: 'http',
      headers: { Authorization: 'Bearer tok-1' },
    })
    expect(config.servers.legacySearch).toMatchObject({ type: 'sse' })
    expect(warnings).toEqual([`config ${file}: ignored client keys: dev (servers.workspaceFiles)`])
  })

  it('loads a Roo/Cline settings file: timeout in seconds, transportType, alwaysAllow ignored, disabled skipped, one warning', () => {
    setEnv({ OPENWEATHER_API_KEY: 'ow-1' })
    // The disabled server's variable is unset: a skipped entry is not expanded.
    unsetEnv('OLD_TOKEN')
    const file = join(FIXTURES, 'cline_mcp_settings.json')
    const { config, warnings } = load(file)
    expect(Object.keys(config.servers)).toEqual(['weather', 'browser'])
    expect(config.servers.weather).toMatchObject({
      timeoutMs: 120_000,
      env: { OPENWEATHER_API_KEY: 'ow-1' },
    })
    expect(config.servers.weather).not.toHaveProperty('alwaysAllow')
    expect(config.servers.browser).toMatchObject({ type: 'sse', timeoutMs: 60_000 })
    expect(config.servers.browser).not.toHaveProperty('transportType')
    expect(warnings).toEqual([
      `config ${file}: ignored client keys: alwaysAllow (mcpServers.weather, mcpServers.old-server), ` +
        'autoApprove (mcpServers.browser); sluice policy decides which tools run; ' +
        'skipped disabled servers: mcpServers.old-server',
    ])
  })
})

describe('client keys', () => {
  it('writes one warning per file, however many keys and servers, as a JSON line on stderr by default', () => {
    const file = join(dir, 'many.json')
    writeFileSync(
      file,
      JSON.stringify({
        mcpServers: {
          a: { command: 'x', alwaysAllow: ['t'], autoApprove: [], disabledTools: [] },
          b: {
            url: 'http://127.0.0.1:1/mcp',
            oauth: { clientId: 'c' },
            gallery: true,
            version: '1',
          },
        },
      }),
    )
    const written: string[] = []
    const original = process.stderr.write.bind(process.stderr)
    process.stderr.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk))
      return true
    }) as typeof process.stderr.write
    try {
      loadConfig(file)
    } finally {
      process.stderr.write = original
    }
    expect(written).toHaveLength(1)
    const line = JSON.parse(written[0]!) as Record<string, unknown>
    expect(line).toMatchObject({
      level: 'warn',
      msg:
        `config ${file}: ignored client keys: alwaysAllow (mcpServers.a), autoApprove (mcpServers.a), ` +
        'disabledTools (mcpServers.a), oauth (mcpServers.b), gallery (mcpServers.b), version (mcpServers.b); ' +
        'sluice policy decides which tools run; upstream auth comes from credentials grants',
      file,
      ignoredKeys: ['alwaysAllow', 'autoApprove', 'disabledTools', 'oauth', 'gallery', 'version'],
      disabledServers: [],
    })
  })

  it('still fails on a typo of a sluice key, with did-you-mean', () => {
    const e = failure(() =>
      inline({ mcpServers: { a: { command: 'x', alwaysAllow: [], timeoutMS: 5 } } }),
    )
    expect(e.message).toBe(
      'invalid config <inline>: mcpServers.a: unknown key "timeoutMS" (did you mean "timeoutMs"?)',
    )
  })

  it('converts timeout seconds to timeoutMs at 1 and 3600, refuses 0 and 3601 naming the path', () => {
    const at = (timeout: unknown) =>
      inline({ mcpServers: { a: { command: 'x', timeout } } }).config.servers.a
    expect(at(1)).toMatchObject({ timeoutMs: 1_000 })
    expect(at(3600)).toMatchObject({ timeoutMs: 3_600_000 })
    expect(at(1.5)).toMatchObject({ timeoutMs: 1_500 })
    const message =
      'invalid config <inline>: mcpServers.a.timeout: expected seconds from 1 to 3600 ' +
      "(Roo/Cline's timeout; sluice's own key is timeoutMs)"
    expect(failure(() => at(3601)).message).toBe(message)
    expect(failure(() => at(0)).message).toBe(message)
    expect(failure(() => at('60')).message).toBe(message)
  })

  it('refuses timeout and timeoutMs together', () => {
    const e = failure(() =>
      inline({ servers: { a: { command: 'x', timeout: 5, timeoutMs: 5000 } } }),
    )
    expect(e.message).toBe(
      'invalid config <inline>: servers.a: give one of "timeout" (seconds) and "timeoutMs"',
    )
  })

  it('names every transport type when one is unknown, and a type that does not fit the entry', () => {
    const e = failure(() =>
      inline({ servers: { a: { type: 'websocket', url: 'ws://127.0.0.1:1' } } }),
    )
    expect(e.message).toContain(
      'servers.a.type: expected one of "stdio", "http", "streamable-http", "streamableHttp", "sse"',
    )
    expect(failure(() => inline({ servers: { a: { type: 'sse', command: 'x' } } })).message).toBe(
      'invalid config <inline>: servers.a: type "sse" needs "url" (a local server has "command" and type "stdio")',
    )
    expect(
      failure(() => inline({ servers: { a: { type: 'stdio', url: 'http://127.0.0.1:1/sse' } } }))
        .message,
    ).toContain(
      'servers.a: type "stdio" needs "command" (a remote server has "url" and type "http" or "sse")',
    )
    expect(
      failure(() =>
        inline({
          servers: { a: { transportType: 'sse', type: 'http', url: 'http://127.0.0.1:1/sse' } },
        }),
      ).message,
    ).toBe(
      'invalid config <inline>: servers.a: "transportType" is "sse" but "type" is "http"; keep one',
    )
  })

  it('accepts every type spelling the clients use', () => {
    for (const type of ['http', 'streamable-http', 'streamableHttp', 'sse']) {
      expect(
        inline({ servers: { a: { type, url: 'http://127.0.0.1:1/mcp' } } }).config.servers.a,
      ).toMatchObject({ type })
    }
    expect(
      inline({ servers: { a: { type: 'stdio', command: 'x' } } }).config.servers.a,
    ).toMatchObject({ type: 'stdio' })
  })
})

describe('expansion', () => {
  it('expands ${VAR}, ${env:VAR}, defaults and the predefined variables', () => {
    setEnv({ SLUICE_T_A: 'a' })
    unsetEnv('SLUICE_T_NOPE')
    expect(
      expandVars(
        '${SLUICE_T_A}-${env:SLUICE_T_A}-${SLUICE_T_NOPE:-d}-${env:SLUICE_T_NOPE:-e}',
        '/p',
      ),
    ).toBe('a-a-d-e')
    expect(
      expandVars(
        '${userHome}|${workspaceFolder}|${workspaceFolderBasename}|${SLUICE_CONFIG_DIR}',
        '/w/p/.vscode',
      ),
    ).toBe(`${homedir()}|/w/p|p|/w/p/.vscode`)
    expect(expandVars('a${/}b${pathSeparator}c', '/p')).toBe('a/b/c')
    // Not a reference: kept as written.
    expect(expandVars('$HOME ${ x } ${1}', '/p')).toBe('$HOME ${ x } ${1}')
  })

  it('expands in command, args, env, cwd, url and headers', () => {
    setEnv({ SLUICE_T_V: 'v' })
    const { config } = inline({
      servers: {
        s: {
          command: '${SLUICE_T_V}/bin',
          args: ['--x=${SLUICE_T_V}'],
          env: { E: '${env:SLUICE_T_V}' },
          cwd: '${SLUICE_T_V}',
        },
        h: {
          url: 'http://127.0.0.1:1/${SLUICE_T_V}',
          headers: { 'X-Tenant': '${SLUICE_T_V}', Authorization: 'Bearer ${SLUICE_T_V}' },
        },
      },
    })
    expect(config.servers.s).toMatchObject({
      command: 'v/bin',
      args: ['--x=v'],
      env: { E: 'v' },
      cwd: join(dir, 'v'),
    })
    expect(config.servers.h).toMatchObject({
      url: 'http://127.0.0.1:1/v',
      headers: { 'X-Tenant': 'v', Authorization: 'Bearer v' },
    })
  })

  it('an unset variable names the file, the exact path and the variable', () => {
    unsetEnv('SLUICE_T_UNSET')
    const file = join(dir, 'unset.json')
    writeFileSync(
      file,
      JSON.stringify({
        mcpServers: {
          api: { url: 'http://127.0.0.1:1/mcp', headers: { 'X-Tenant': '${SLUICE_T_UNSET}' } },
        },
      }),
    )
    expect(failure(() => loadConfig(file)).message).toBe(
      `invalid config ${file}: mcpServers.api.headers.X-Tenant: \${SLUICE_T_UNSET} is not set (use \${SLUICE_T_UNSET:-default} for a default)`,
    )
    expect(
      failure(() =>
        inline({ servers: { s: { command: 'x', env: { K: '${env:SLUICE_T_UNSET}' } } } }),
      ).message,
    ).toBe(
      'invalid config <inline>: servers.s.env.K: ${SLUICE_T_UNSET} is not set (use ${SLUICE_T_UNSET:-default} for a default)',
    )
  })

  it('an ${input:ID} without its SLUICE_INPUT_ variable says which variable to set, with the input description', () => {
    unsetEnv('SLUICE_INPUT_PERPLEXITY_KEY', 'SLUICE_INPUT_API_TOKEN')
    const file = join(FIXTURES, 'vscode/.vscode/mcp.json')
    expect(inputEnvName('perplexity-key')).toBe('SLUICE_INPUT_PERPLEXITY_KEY')
    expect(failure(() => load(file)).message).toBe(
      `invalid config ${file}: ` +
        'servers.perplexity.env.PERPLEXITY_API_KEY: ${input:perplexity-key} ("Perplexity API Key") has no value: sluice does not prompt; set SLUICE_INPUT_PERPLEXITY_KEY in the environment; ' +
        'servers.internal.headers.Authorization: ${input:api-token} ("Internal API token") has no value: sluice does not prompt; set SLUICE_INPUT_API_TOKEN in the environment',
    )
  })

  it('refuses a client variable sluice cannot resolve', () => {
    expect(
      failure(() => inline({ servers: { s: { command: 'x', args: ['${command:pickFile}'] } } }))
        .message,
    ).toBe(
      'invalid config <inline>: servers.s.args[0]: ${command:...} is not supported (sluice expands ${VAR}, ${VAR:-default}, ${env:VAR}, ${input:ID}, ${userHome} and ${workspaceFolder})',
    )
  })

  it('checks the url after expansion: a default may hold the scheme, a non-http URL is refused', () => {
    unsetEnv('SLUICE_T_BASE')
    expect(
      inline({ servers: { h: { url: '${SLUICE_T_BASE:-http://127.0.0.1:9}/mcp' } } }).config.servers
        .h,
    ).toMatchObject({ url: 'http://127.0.0.1:9/mcp' })
    expect(failure(() => inline({ servers: { h: { url: 'unix:///tmp/mcp.sock' } } })).message).toBe(
      'invalid config <inline>: servers.h.url: expected an http or https URL',
    )
  })

  it('names a missing envFile and a bad line by number, never its content', () => {
    const e = failure(() => inline({ servers: { s: { command: 'x', envFile: 'nope.env' } } }))
    expect(e.message).toBe(
      `invalid config <inline>: servers.s.envFile: file not found: ${join(dir, 'nope.env')}`,
    )
    writeFileSync(join(dir, 'bad.env'), 'A=1\nsecret-without-equals\n')
    const bad = failure(() => inline({ servers: { s: { command: 'x', envFile: 'bad.env' } } }))
    expect(bad.message).toBe(
      `invalid config <inline>: servers.s.envFile: line 2 of ${join(dir, 'bad.env')} is not KEY=value`,
    )
    expect(bad.message).not.toContain('secret-without')
  })

  it('lets env override envFile', () => {
    writeFileSync(join(dir, 'two.env'), 'A=from-file\nB=from-file\n')
    const { config } = inline({
      servers: { s: { command: 'x', envFile: 'two.env', env: { B: 'from-env' } } },
    })
    expect(config.servers.s).toMatchObject({ env: { A: 'from-file', B: 'from-env' } })
  })
})

describe('literal secrets in headers', () => {
  const entry = (headers: Record<string, string>) => ({
    mcpServers: { crm: { url: 'http://127.0.0.1:1/mcp', headers } },
  })

  it('refuses a literal Authorization header, pointing to ${VAR} and valueFrom without echoing it', () => {
    const e = failure(() => inline(entry({ Authorization: 'Bearer abc123secret' })))
    expect(e.message).toBe(
      'invalid config <inline>: mcpServers.crm.headers.Authorization: a literal secret in the file is refused; ' +
        'write "Bearer ${CRM_TOKEN}" to take it from the environment, or use ' +
        'credentials: { grant: static, header: Authorization, prefix: "Bearer ", valueFrom: env:CRM_TOKEN } (or file:PATH)',
    )
    expect(e.message).not.toContain('abc123secret')
  })

  it('refuses literal X-Api-Key and secret-looking headers, and a default in one', () => {
    expect(failure(() => inline(entry({ 'X-Api-Key': 'k-1' }))).message).toBe(
      'invalid config <inline>: mcpServers.crm.headers.X-Api-Key: a literal secret in the file is refused; ' +
        'write "${CRM_TOKEN}" to take it from the environment, or use ' +
        'credentials: { grant: static, header: X-Api-Key, valueFrom: env:CRM_TOKEN } (or file:PATH)',
    )
    expect(failure(() => inline(entry({ 'X-Goog-Api-Key': 'k' }))).message).toContain(
      'literal secret',
    )
    expect(failure(() => inline(entry({ Cookie: 'session=1' }))).message).toContain(
      'literal secret',
    )
    expect(failure(() => inline(entry({ Authorization: 'Bearer ${T:-abc}' }))).message).toContain(
      'headers.Authorization: a ${VAR:-default} in a secret header puts the secret in the file',
    )
    expect(failure(() => inline(entry({ Authorization: 'Bearer abc${T}' }))).message).toContain(
      'literal secret',
    )
  })

  it('allows references in secret headers and literals in other headers', () => {
    setEnv({ SLUICE_T_TOKEN: 't' })
    const { config } = inline(
      entry({
        Authorization: 'Bearer ${SLUICE_T_TOKEN}',
        'X-Api-Key': '${env:SLUICE_T_TOKEN}',
        'X-Tenant': 'acme',
      }),
    )
    expect(config.servers.crm).toMatchObject({
      headers: { Authorization: 'Bearer t', 'X-Api-Key': 't', 'X-Tenant': 'acme' },
    })
  })
})
