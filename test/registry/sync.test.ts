/**
 * Issue 15, items 1 and 5: `sluice registry sync` against a local registry that serves the v0.1
 * read API from fixture server.json files (pagination, a deprecated version, invalid entries),
 * and the real reference servers resolved from the installed npm packages with no network.
 * Every error names the entry by its full name and leaves the config byte for byte as it was.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { RegistryClient } from '../../src/registry/index.js'
import { runCli } from '../helpers/cli.js'
import { ROOT } from '../helpers/runtime.js'
import { freePort } from '../upstream/helpers.js'
// @ts-expect-error a plain .mjs fixture without types
import { startRegistry } from '../fixtures/registry/serve.mjs'

interface FixtureRegistry {
  url: string
  requests: string[]
  close(): Promise<void>
}
const start = startRegistry as (options?: {
  pageSize?: number
  only?: string[]
  status?: number
}) => Promise<FixtureRegistry>

const installed = (pkg: string): string =>
  (
    JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as {
      version: string
    }
  ).version

let dir: string
let registry: FixtureRegistry
const opened: FixtureRegistry[] = []
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-registry-'))
  registry = await start()
})
afterAll(async () => {
  await registry?.close()
  rmSync(dir, { recursive: true, force: true })
})
afterEach(async () => {
  for (const r of opened.splice(0)) await r.close()
})

let n = 0
function configFile(text: string): string {
  const file = join(dir, `sluice-${++n}.yaml`)
  writeFileSync(file, text)
  return file
}

const HEADER = '# Our gateway. Keep this comment.\nlimits:\n  timeoutMs: 20000 # and this one\n'

describe('the fixture registry', () => {
  it('lists the real reference servers at their installed versions', () => {
    for (const [file, pkg] of [
      ['server-memory.json', '@modelcontextprotocol/server-memory'],
      ['server-everything.json', '@modelcontextprotocol/server-everything'],
    ] as const) {
      const entry = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/registry', file), 'utf8'))
      expect(entry.packages[0].version, `${file}: update it to the installed ${pkg}`).toBe(
        installed(pkg),
      )
    }
  })
})

describe('RegistryClient', () => {
  it('follows the cursor through every page and skips a deprecated latest version', async () => {
    const only = [
      'server-memory.json',
      'server-everything.json',
      'weather-1.0.0.json',
      'weather-1.1.0.json',
      'weather-2.0.0.json',
    ]
    const small = await start({ pageSize: 2, only })
    opened.push(small)
    const client = new RegistryClient(small.url, { timeoutMs: 5_000 })
    const entries = await client.latestAll()
    expect(entries.map((e) => `${e.server.name}@${e.server.version}`)).toEqual([
      'io.github.acme/weather@1.1.0',
      'io.github.modelcontextprotocol/server-everything@2026.8.31',
      'io.github.modelcontextprotocol/server-memory@2026.8.31',
    ])
    // Three latest entries at two a page: two list pages, then the versions of the deprecated one.
    expect(small.requests).toEqual([
      '/v0.1/servers?limit=100&version=latest',
      '/v0.1/servers?cursor=Mg&limit=100&version=latest',
      '/v0.1/servers/io.github.acme%2Fweather/versions',
    ])
  })

  it('returns a named deprecated version, with its status', async () => {
    const client = new RegistryClient(registry.url, { timeoutMs: 5_000 })
    const entry = await client.version('io.github.acme/weather', '2.0.0')
    expect([entry.server.version, entry.status, entry.statusMessage]).toEqual([
      '2.0.0',
      'deprecated',
      'drops alerts; stay on 1.1.0',
    ])
  })
})

describe('sluice registry sync', () => {
  /** `sluice registry sync` of `file` from the fixture registry, one `--server` a name. */
  const sync = (file: string, ...servers: string[]) =>
    runCli([
      'registry',
      'sync',
      '--config',
      file,
      '--registry',
      registry.url,
      ...servers.flatMap((server) => ['--server', server]),
    ])

  it('writes pinned npx commands for the reference servers and keeps the comments of the file', async () => {
    const mine = `${HEADER}servers:\n  # written by hand\n  local:\n    command: node # the entry's own comment\n    args: [a.js]\n`
    const file = configFile(mine)
    const out = await sync(
      file,
      'io.github.modelcontextprotocol/server-memory',
      'io.github.modelcontextprotocol/server-everything@2026.8.31',
    )
    expect(out.stderr).toBe(
      [
        `imported 2 servers into ${file}:`,
        '  server-memory      io.github.modelcontextprotocol/server-memory@2026.8.31  (npm @modelcontextprotocol/server-memory@2026.8.31)',
        '  server-everything  io.github.modelcontextprotocol/server-everything@2026.8.31  (npm @modelcontextprotocol/server-everything@2026.8.31)',
        'review with `sluice registry diff`, then pin with `sluice lock --sign KEY`',
        '',
      ].join('\n'),
    )
    expect(out.code).toBe(0)
    const text = readFileSync(file, 'utf8')
    expect(text.slice(0, mine.length)).toBe(mine)
    const servers = (parseYaml(text) as { servers: Record<string, unknown> }).servers
    expect(servers['server-memory']).toEqual({
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-memory@2026.8.31'],
      // Required, not secret, not given: taken from sluice's environment when the config loads.
      env: { MEMORY_FILE_PATH: '${MEMORY_FILE_PATH}' },
      description: 'Memory',
      origin: {
        registry: registry.url,
        name: 'io.github.modelcontextprotocol/server-memory',
        version: '2026.8.31',
      },
    })
    expect(servers['server-everything']).toEqual({
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-everything@2026.8.31', 'stdio'],
      description: 'Exercises every feature of the MCP protocol, for tests',
      origin: {
        registry: registry.url,
        name: 'io.github.modelcontextprotocol/server-everything',
        version: '2026.8.31',
      },
    })
  })

  it('takes registry: from the config, fills URL variables, turns a secret header into a grant and records the resolved latest', async () => {
    const file = configFile(
      [
        'registry:',
        `  url: ${registry.url}/`,
        '  servers: [io.github.acme/weather, io.github.acme/crm]',
        '  variables:',
        '    io.github.acme/weather: { port: "8099" }',
        '    io.github.acme/crm: { --region: us }',
        '  secrets:',
        '    io.github.acme/crm: { CRM_TOKEN: file:secrets/crm.token }',
        '',
      ].join('\n'),
    )
    const out = await runCli(['registry', 'sync', '--config', file])
    expect(out.code).toBe(0)
    const servers = (parseYaml(readFileSync(file, 'utf8')) as { servers: Record<string, unknown> })
      .servers
    expect(servers.weather).toEqual({
      type: 'http',
      url: 'http://127.0.0.1:8099/v2/mcp',
      credentials: { grant: 'static', header: 'X-Api-Key', valueFrom: 'env:X_API_KEY' },
      description: 'Weather',
      origin: { registry: registry.url, name: 'io.github.acme/weather', version: '1.1.0' },
    })
    expect(servers.crm).toEqual({
      command: 'npx',
      args: ['-y', '@acme/crm-mcp@3.2.1', '--region', 'us'],
      env: { CRM_LOG_LEVEL: 'warn' },
      credentials: { grant: 'env', env: { CRM_TOKEN: 'file:secrets/crm.token' } },
      description: 'Customer records',
      origin: { registry: registry.url, name: 'io.github.acme/crm', version: '3.2.1' },
    })
  })

  it('imports a deprecated version when it is named, and says so', async () => {
    const file = configFile('registry:\n  variables:\n    io.github.acme/weather: { port: "1" }\n')
    const out = await sync(file, 'io.github.acme/weather@2.0.0')
    expect(out.code).toBe(0)
    expect(out.stderr.split('\n')[0]).toBe(
      'warning: io.github.acme/weather@2.0.0 is deprecated: drops alerts; stay on 1.1.0; imported because it was named',
    )
  })

  it('replaces an entry it imported before, on the next sync', async () => {
    const file = configFile('registry:\n  variables:\n    io.github.acme/weather: { port: "1" }\n')
    expect((await sync(file, 'io.github.acme/weather@1.0.0')).code).toBe(0)
    expect((await sync(file, 'io.github.acme/weather@1.1.0')).code).toBe(0)
    const servers = (
      parseYaml(readFileSync(file, 'utf8')) as { servers: Record<string, { url: string }> }
    ).servers
    expect(Object.keys(servers)).toEqual(['weather'])
    expect(servers.weather!.url).toBe('http://127.0.0.1:1/v2/mcp')
  })

  it('creates the config file when there is none', async () => {
    const file = join(dir, 'new', 'sluice.yaml')
    mkdirSync(join(dir, 'new'))
    const out = await sync(file, 'io.github.modelcontextprotocol/server-everything')
    expect(out.code).toBe(0)
    expect(
      Object.keys((parseYaml(readFileSync(file, 'utf8')) as { servers: object }).servers),
    ).toEqual(['server-everything'])
  })
})

describe('sluice registry sync refuses bad input and changes no file', () => {
  async function refused(text: string, args: string[]): Promise<{ code: number; stderr: string }> {
    const file = configFile(text)
    const out = await runCli(['registry', 'sync', '--config', file, ...args])
    expect(readFileSync(file, 'utf8')).toBe(text)
    expect(out.stdout).toBe('')
    return out
  }

  it('a registry that is down', async () => {
    const port = await freePort()
    const out = await refused(HEADER, [
      '--registry',
      `http://127.0.0.1:${port}`,
      '--server',
      'io.github.acme/weather',
    ])
    expect(out.stderr).toBe(
      `sluice registry: REGISTRY_UNAVAILABLE: registry http://127.0.0.1:${port}/v0.1/servers/io.github.acme%2Fweather/versions: cannot connect (ECONNREFUSED)\n`,
    )
    expect(out.code).toBe(1)
  })

  it('a registry that answers with an error status', async () => {
    const failing = await start({ status: 503 })
    opened.push(failing)
    const out = await refused(HEADER, ['--registry', failing.url])
    expect(out.stderr).toBe(
      `sluice registry: REGISTRY_UNAVAILABLE: registry ${failing.url}/v0.1/servers: HTTP 503 Service Unavailable\n`,
    )
    expect(out.code).toBe(1)
  })

  /**
   * Refusals of an entry of the fixture registry (of the whole registry, with no `--server`),
   * each with exit code 2: all of stderr (given the registry's URL), or a pattern it matches.
   */
  const ENTRY_REFUSALS: Array<{
    name: string
    server?: string
    /** The config before the sync (HEADER when absent). */
    text?: string
    stderr: string | ((url: string) => string) | RegExp
  }> = [
    {
      name: 'an entry that fails the server.json schema, named',
      server: 'io.github.acme/broken',
      stderr:
        'sluice registry: REGISTRY_INVALID: registry entry io.github.acme/broken@1.0.0 fails the server.json schema (2025-12-11): description: Too big: expected string to have <=100 characters; packages[0].version: expected an exact version, not "latest"\n',
    },
    {
      name: 'the whole registry when one entry in it is invalid',
      stderr:
        /^sluice registry: REGISTRY_INVALID: registry entry io\.github\.acme\/broken@1\.0\.0 fails the server\.json schema/,
    },
    {
      name: 'an unknown server name, with the closest one',
      server: 'io.github.acme/wether',
      stderr: (url) =>
        `sluice registry: REGISTRY_NOT_FOUND: registry ${url} has no server io.github.acme/wether (did you mean io.github.acme/weather?)\n`,
    },
    {
      name: 'an unknown version, with the versions there are',
      server: 'io.github.acme/weather@3.0.0',
      stderr: (url) =>
        `sluice registry: REGISTRY_NOT_FOUND: registry ${url}: io.github.acme/weather has no version 3.0.0 (versions: 2.0.0 (deprecated), 1.1.0, 1.0.0)\n`,
    },
    {
      name: 'a package type that cannot run here',
      server: 'io.github.acme/bundle',
      stderr:
        'sluice registry: REGISTRY_INVALID: registry entry io.github.acme/bundle@0.3.0 cannot be imported: packages[0] (mcpb https://github.com/acme/bundle/releases/download/v0.3.0/bundle.mcpb): registry type mcpb cannot run here: sluice starts npm, pypi, oci packages (npx, uvx, docker); an .mcpb bundle needs a bundle host\n',
    },
    {
      name: 'a URL template variable the config does not fill',
      server: 'io.github.acme/weather',
      stderr:
        'sluice registry: REGISTRY_INVALID: registry entry io.github.acme/weather@1.1.0 cannot be imported: remotes[0] (streamable-http): URL template variable {port} is missing; set registry.variables["io.github.acme/weather"].port in the config\n',
    },
    {
      name: 'a key taken by a server written by hand',
      server: 'io.github.modelcontextprotocol/server-memory',
      text: 'servers:\n  server-memory: { command: node, args: [mine.js] }\n',
      stderr:
        /^sluice registry: REGISTRY_INVALID: registry entry io\.github\.modelcontextprotocol\/server-memory@2026\.8\.31 would replace servers\.server-memory of .*, which was not imported from a registry; rename or remove that entry first\n$/,
    },
  ]
  for (const c of ENTRY_REFUSALS) {
    it(c.name, async () => {
      const server = c.server === undefined ? [] : ['--server', c.server]
      const out = await refused(c.text ?? HEADER, ['--registry', registry.url, ...server])
      if (c.stderr instanceof RegExp) expect(out.stderr).toMatch(c.stderr)
      else expect(out.stderr).toBe(typeof c.stderr === 'string' ? c.stderr : c.stderr(registry.url))
      expect(out.code).toBe(2)
    })
  }

  it('a bad registry block, with the path', async () => {
    const text = 'registry:\n  url: ftp://example.com\n  sevrers: []\n'
    const out = await refused(text, [])
    expect(out.stderr).toMatch(
      /CONFIG_INVALID: invalid config .*: registry\.url: expected an http or https URL; registry: unknown key "sevrers"\n$/,
    )
    expect(out.code).toBe(2)
  })

  it('no registry at all', async () => {
    const out = await refused(HEADER, ['--server', 'io.github.acme/weather'])
    expect(out.stderr).toBe(
      'sluice registry: no registry: pass --registry URL or set registry.url in the config\n',
    )
    expect(out.code).toBe(2)
  })
})
