/**
 * The committed demo catalogue: `examples/demo/sluice.lock.json` and `tool-bindings/`. CI
 * regenerates the bindings and fails on any difference (`sluice bindings --check`); the live demo
 * servers must still match the committed pins; the lock must be portable and hold no secrets.
 * Needs `npm run build` first (the CLI runs from dist, as users run it).
 */
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BINDINGS_FILES, portableSource, renderBindings } from '../../src/cli/lock.js'
import { loadConfig } from '../../src/config/index.js'
import { readLock, reconcile, type LockFile } from '../../src/registry/index.js'
import { UpstreamSet } from '../../src/upstream/index.js'
import { ROOT } from '../helpers/runtime.js'
import { FIXTURES } from '../upstream/helpers.js'

const DEMO_CONFIG = join(ROOT, 'examples/demo/sluice.yaml')
const DEMO_LOCK = join(ROOT, 'examples/demo/sluice.lock.json')
const BINDINGS = join(ROOT, 'tool-bindings')

function sluice(
  args: string[],
  env: Record<string, string> = {},
): { status: number | null; stdout: string; stderr: string } {
  const out = spawnSync(process.execPath, [join(ROOT, 'dist/src/main.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    timeout: 60_000,
  })
  return { status: out.status, stdout: out.stdout, stderr: out.stderr }
}

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-e2e-bindings-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('committed bindings', () => {
  it('match a fresh generation from the committed lock (sluice bindings --check exits 0)', () => {
    const out = sluice([
      'bindings',
      '--check',
      '--config',
      'examples/demo/sluice.yaml',
      '--out',
      'tool-bindings',
    ])
    expect(out.stderr).toBe('bindings in tool-bindings match examples/demo/sluice.lock.json\n')
    expect(out.status).toBe(0)
  })

  it('are exactly what renderBindings makes of the lock', async () => {
    const { files, problems } = renderBindings(await readLock(DEMO_LOCK))
    expect([...files.keys()].sort()).toEqual(Object.values(BINDINGS_FILES).sort())
    for (const [name, text] of files)
      expect(readFileSync(join(BINDINGS, name), 'utf8'), name).toBe(text)
    expect(problems).toEqual([])
  })

  it('declare the three demo servers in one global tools, with a per-server coverage report', () => {
    const dts = readFileSync(join(BINDINGS, BINDINGS_FILES.declarations), 'utf8')
    expect(dts.match(/^declare const tools/gm)).toHaveLength(1)
    for (const server of ['everything', 'filesystem', 'memory'])
      expect(dts).toContain(`  readonly ${server}: {`)
    const coverage = JSON.parse(readFileSync(join(BINDINGS, BINDINGS_FILES.coverage), 'utf8')) as {
      tools: number
      servers: Record<string, { tools: number; typedOutputs: number; unknownOutputs: string[] }>
    }
    expect(Object.keys(coverage.servers)).toEqual(['everything', 'filesystem', 'memory'])
    expect(coverage.servers.memory).toMatchObject({ tools: 9, typedOutputs: 9, unknownOutputs: [] })
    expect(coverage.servers.everything?.unknownOutputs).toContain('everything.get-sum')
    expect(coverage.tools).toBe(Object.values(coverage.servers).reduce((n, s) => n + s.tools, 0))
  })

  it('--check exits 1 and names every changed, missing or stray file', () => {
    const out = join(dir, 'stale-bindings')
    cpSync(BINDINGS, out, { recursive: true })
    writeFileSync(
      join(out, BINDINGS_FILES.declarations),
      `${readFileSync(join(out, BINDINGS_FILES.declarations), 'utf8')}// edited\n`,
    )
    rmSync(join(out, BINDINGS_FILES.coverage))
    writeFileSync(join(out, 'memory.d.ts'), 'declare const tools: {}\n')
    const result = sluice([
      'bindings',
      '--check',
      '--config',
      'examples/demo/sluice.yaml',
      '--out',
      out,
    ])
    expect(result.status).toBe(1)
    expect(result.stderr).toBe(
      [
        `bindings are stale; run \`sluice bindings --out ${out}\`:`,
        `  ${join(out, 'tools.d.ts')}`,
        `  ${join(out, 'coverage.json')} (missing)`,
        `  ${join(out, 'memory.d.ts')} (not generated; remove it)`,
        '',
      ].join('\n'),
    )
  })
})

describe('the committed demo lock', () => {
  let lock: LockFile
  beforeAll(async () => {
    lock = await readLock(DEMO_LOCK)
  })

  it('is portable: server sources as written in the config, no absolute paths', () => {
    const text = readFileSync(DEMO_LOCK, 'utf8')
    expect(text).not.toContain(ROOT)
    expect(text).not.toContain(homedir())
    for (const entry of Object.values(lock.servers)) {
      expect(entry.source.type).toBe('stdio')
      if (entry.source.type !== 'stdio') continue
      expect(entry.source.command).toBe('node')
      expect(entry.source.args[0]).toMatch(
        /^\$\{SLUICE_CONFIG_DIR\}\/\.\.\/\.\.\/node_modules\/@modelcontextprotocol\/server-[a-z]+\/dist\/index\.js$/,
      )
      for (const arg of entry.source.args) expect(arg.startsWith('/')).toBe(false)
    }
    expect(lock.servers.filesystem?.source).toEqual({
      type: 'stdio',
      command: 'node',
      args: [
        '${SLUICE_CONFIG_DIR}/../../node_modules/@modelcontextprotocol/server-filesystem/dist/index.js',
        '${SLUICE_CONFIG_DIR}/files',
      ],
    })
  })

  it('holds no environment, headers or secrets', () => {
    const text = readFileSync(DEMO_LOCK, 'utf8')
    expect(text).not.toMatch(/MEMORY_FILE_PATH|"env"|"headers"|Bearer |BEGIN [A-Z ]*PRIVATE KEY/)
  })

  it('still matches the live demo servers: nothing quarantined, unpinned, missing or renamed', async () => {
    // The memory server's data file goes to the temp dir, never into examples/demo/.data.
    const previous = process.env.SLUICE_DEMO_MEMORY_FILE
    process.env.SLUICE_DEMO_MEMORY_FILE = join(dir, 'memory.jsonl')
    const config = (() => {
      try {
        return loadConfig(DEMO_CONFIG)
      } finally {
        if (previous === undefined) delete process.env.SLUICE_DEMO_MEMORY_FILE
        else process.env.SLUICE_DEMO_MEMORY_FILE = previous
      }
    })()
    expect(Object.keys(config.servers).sort()).toEqual(Object.keys(lock.servers).sort())
    const upstreams = new UpstreamSet(config.servers, { callTimeoutMs: 30_000 })
    try {
      for (const name of Object.keys(lock.servers)) {
        const upstream = upstreams.get(name)!
        const live = await upstream.listTools()
        const result = reconcile(lock.servers[name], live, { allowUnpinned: false })
        expect({
          name,
          quarantined: result.quarantined,
          unpinned: result.unpinned,
          missing: result.missing,
          duplicates: result.duplicates,
        }).toEqual({
          name,
          quarantined: [],
          unpinned: [],
          missing: [],
          duplicates: [],
        })
        expect(result.exposed.map((e) => e.definition.name)).toEqual(
          Object.keys(lock.servers[name]!.tools),
        )
        expect(upstream.health().serverInfo).toEqual(lock.servers[name]!.server)
      }
    } finally {
      await upstreams.close()
    }
  })
})

describe('portableSource', () => {
  const base = '/srv/project/config'

  it('keeps command and args as written, so ${...} placeholders never become values', () => {
    const expanded = { command: 'node', args: [`${base}/server.js`, '--token=s3cr3t'], env: {} }
    const raw = {
      command: 'node',
      args: ['${SLUICE_CONFIG_DIR}/server.js', '--token=${API_TOKEN}'],
      env: { X: '${X}' },
    }
    expect(portableSource(expanded, raw, base)).toEqual({
      type: 'stdio',
      command: 'node',
      args: ['${SLUICE_CONFIG_DIR}/server.js', '--token=${API_TOKEN}'],
    })
  })

  it('writes the config folder back as ${SLUICE_CONFIG_DIR} when there is no raw entry', () => {
    const expanded = {
      command: `${base}/bin/server`,
      args: [`${base}/data`, `--root=${base}`, '/usr/share/x'],
      env: {},
    }
    expect(portableSource(expanded, undefined, base)).toEqual({
      type: 'stdio',
      command: '${SLUICE_CONFIG_DIR}/bin/server',
      args: ['${SLUICE_CONFIG_DIR}/data', '--root=${SLUICE_CONFIG_DIR}', '/usr/share/x'],
    })
  })

  it('keeps an HTTP URL without userinfo, query or fragment, placeholders included', () => {
    const raw = { url: 'https://user:pw@${CRM_HOST}/mcp?key=${CRM_KEY}#x' }
    expect(
      portableSource(
        { url: 'https://user:pw@crm.example.com/mcp?key=abc#x', headers: {} } as never,
        raw,
        base,
      ),
    ).toEqual({
      type: 'http',
      url: 'https://${CRM_HOST}/mcp',
    })
    expect(
      portableSource(
        { url: 'https://u:p@crm.example.com/mcp?key=abc', headers: {} } as never,
        { url: 'https://u:p@crm.example.com/mcp?key=abc' },
        base,
      ),
    ).toEqual({
      type: 'http',
      url: 'https://crm.example.com/mcp',
    })
  })
})

describe('sluice lock and bindings on a fresh config', () => {
  it('pins a live server with its source unexpanded, then generates and checks bindings from the lock alone', () => {
    const project = join(dir, 'project')
    const config = join(dir, 'sluice.yaml')
    writeFileSync(
      config,
      [
        'servers:',
        '  weather:',
        '    command: node',
        '    args: ["${WEATHER_SERVER}", "--token=${WEATHER_TOKEN}"]',
        '    env: { WEATHER_TOKEN: "${WEATHER_TOKEN}" }',
        'lock:',
        '  file: weather.lock.json',
        '',
      ].join('\n'),
    )
    const env = {
      WEATHER_SERVER: join(FIXTURES, 'rugpull.mjs'),
      WEATHER_TOKEN: 'tok-DO-NOT-PIN-7f3a',
    }
    const locked = sluice(['lock', '--config', config], env)
    expect(locked.stderr).toBe(`pinned 2 tools of 1 servers in ${join(dir, 'weather.lock.json')}\n`)
    expect(locked.status).toBe(0)
    const text = readFileSync(join(dir, 'weather.lock.json'), 'utf8')
    expect(text).not.toContain('tok-DO-NOT-PIN-7f3a')
    expect(text).not.toContain(FIXTURES)
    const lock = JSON.parse(text) as LockFile
    expect(lock.servers.weather?.source).toEqual({
      type: 'stdio',
      command: 'node',
      args: ['${WEATHER_SERVER}', '--token=${WEATHER_TOKEN}'],
    })
    expect(Object.keys(lock.servers.weather!.tools)).toEqual(['get_weather', 'mutate'])

    // No live server and no env from here on: bindings come from the lock alone.
    const lockFile = join(dir, 'weather.lock.json')
    const generated = sluice(['bindings', '--lock', lockFile, '--out', project])
    expect(generated.stderr).toBe(`wrote 3 files to ${project}\n`)
    expect(generated.status).toBe(0)
    expect(readFileSync(join(project, 'tools.d.ts'), 'utf8')).toContain(
      'get_weather(args: Weather_GetWeatherInput): Promise<unknown>',
    )
    expect(sluice(['bindings', '--check', '--lock', lockFile, '--out', project]).stderr).toBe(
      `bindings in ${project} match ${lockFile}\n`,
    )
  })

  it('waits for a server slower to start than its timeoutMs, as sluice serve does', () => {
    const config = join(dir, 'late.yaml')
    // The server takes 1 s to start; its calls get 300 ms. Locking it used to fail at 300 ms.
    const delay = 'data:text/javascript,await new Promise((r) => setTimeout(r, 1000))'
    writeFileSync(
      config,
      JSON.stringify({
        servers: {
          late: {
            command: process.execPath,
            args: ['--import', delay, join(FIXTURES, 'rugpull.mjs')],
            timeoutMs: 300,
          },
        },
      }),
    )
    const out = join(dir, 'late.lock.json')
    const locked = sluice(['lock', '--config', config, '--out', out])
    expect(locked.stderr).toBe(`pinned 2 tools of 1 servers in ${out}\n`)
    expect(locked.status).toBe(0)
  })
})
