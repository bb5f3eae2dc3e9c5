/**
 * Upstream against the real reference servers: memory, filesystem and everything over stdio,
 * everything over Streamable HTTP.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Upstream, UpstreamSet } from '../../src/upstream/index.js'
import {
  bin,
  clientInfo,
  textOf,
  startEverythingHttp,
  tempDir,
  type RunningServer,
} from './helpers.js'

describe('Upstream over stdio (server-memory)', () => {
  const dir = tempDir()
  const memory = new Upstream(
    'memory',
    bin('mcp-server-memory', [], { MEMORY_FILE_PATH: join(dir.path, 'memory.jsonl') }),
    {
      callTimeoutMs: 20_000,
      clientInfo,
    },
  )
  afterAll(async () => {
    try {
      await memory.close()
    } finally {
      dir.remove()
    }
  })

  it('connects lazily on first use', async () => {
    expect(memory.health()).toEqual({ state: 'idle', restarts: 0, probing: false })
    const tools = await memory.listTools()
    expect(tools.map((t) => t.name)).toContain('create_entities')
    expect(memory.health()).toMatchObject({
      state: 'ready',
      restarts: 0,
      serverInfo: { name: 'memory-server' },
    })
  })

  it('returns the raw result with structuredContent', async () => {
    const created = await memory.callTool('create_entities', {
      entities: [{ name: 'Alice', entityType: 'person', observations: ['likes tea'] }],
    })
    expect(created.isError).toBeFalsy()
    expect(created.structuredContent).toEqual({
      entities: [{ name: 'Alice', entityType: 'person', observations: ['likes tea'] }],
    })
    const graph = await memory.callTool('read_graph', {})
    expect(graph.structuredContent).toMatchObject({ entities: [{ name: 'Alice' }] })
  })

  it('runs parallel calls over one session, each getting its own answer', async () => {
    // server-memory read-modify-writes its file, so writes go one by one and reads in parallel.
    const names = Array.from({ length: 8 }, (_, i) => `E${i}`)
    for (const name of names)
      await memory.callTool('create_entities', {
        entities: [{ name, entityType: 't', observations: [name] }],
      })
    const results = await Promise.all(
      names.map((name) => memory.callTool('open_nodes', { names: [name] })),
    )
    expect(
      results.map((r) =>
        (r.structuredContent as { entities: Array<{ name: string }> }).entities.map((e) => e.name),
      ),
    ).toEqual(names.map((n) => [n]))
    expect(memory.health().restarts).toBe(0)
  })

  it('returns an isError result (SDK 1.x server) for an unknown tool rather than throwing', async () => {
    const result = await memory.callTool('no_such_tool', {})
    expect(result.isError).toBe(true)
    expect(JSON.stringify(result.content)).toContain('not found')
  })
})

describe('Upstream over stdio (server-filesystem)', () => {
  const dir = tempDir()
  writeFileSync(join(dir.path, 'hello.txt'), 'hello from the sandbox dir\n')
  const fs = new Upstream('fs', bin('mcp-server-filesystem', [dir.path]), {
    callTimeoutMs: 20_000,
    clientInfo,
  })
  afterAll(async () => {
    try {
      await fs.close()
    } finally {
      dir.remove()
    }
  })

  it('keeps its allowed directory (the client declares no roots)', async () => {
    const allowed = await fs.callTool('list_allowed_directories', {})
    expect(JSON.stringify(allowed.content)).toContain(dir.path)
    const read = await fs.callTool('read_text_file', { path: join(dir.path, 'hello.txt') })
    expect(read.structuredContent).toEqual({ content: 'hello from the sandbox dir\n' })
  })

  it('passes an access-denied isError result through unchanged', async () => {
    const denied = await fs.callTool('read_text_file', { path: '/etc/passwd' })
    expect(denied.isError).toBe(true)
    expect(JSON.stringify(denied.content)).toMatch(/Access denied/)
  })
})

describe('Upstream over stdio (server-everything)', () => {
  const everything = new Upstream('everything', bin('mcp-server-everything'), {
    callTimeoutMs: 20_000,
    clientInfo,
  })
  afterAll(() => everything.close())

  it('lists tools with annotations and calls one', async () => {
    const tools = await everything.listTools()
    const sum = tools.find((t) => t.name === 'get-sum')
    expect(sum?.inputSchema).toMatchObject({ type: 'object' })
    expect(tools.map((t) => t.name)).not.toContain('get-roots-list')
    const result = await everything.callTool('get-sum', { a: 2, b: 40 })
    expect(result.content).toEqual([{ type: 'text', text: 'The sum of 2 and 40 is 42.' }])
  })

  it('passes only the configured env plus the SDK defaults to the child', async () => {
    const result = await everything.callTool('get-env', {})
    const env = JSON.parse(textOf(result)) as Record<string, string>
    expect(Object.keys(env)).not.toContain('VITEST')
    expect(env.PATH).toBeDefined()
  })

  it('returns an isError result for arguments the server rejects', async () => {
    const result = await everything.callTool('get-sum', { a: 'x' })
    expect(result.isError).toBe(true)
  })
})

describe('Upstream over Streamable HTTP (server-everything)', () => {
  let server: RunningServer
  let set: UpstreamSet
  beforeAll(async () => {
    server = await startEverythingHttp()
    set = new UpstreamSet(
      { everything: { url: server.url, headers: {} } },
      { callTimeoutMs: 20_000, clientInfo },
    )
  })
  afterAll(async () => {
    try {
      await set?.close()
    } finally {
      await server?.stop()
    }
  })

  it('lists, calls, and reports health by server name', async () => {
    const everything = set.get('everything')!
    expect(set.names()).toEqual(['everything'])
    const tools = await everything.listTools()
    expect(tools.length).toBeGreaterThanOrEqual(10)
    const result = await everything.callTool('get-structured-content', { location: 'Chicago' })
    expect(result.structuredContent).toMatchObject({ temperature: expect.any(Number) })
    expect(set.health()).toMatchObject({
      everything: { state: 'ready', serverInfo: { name: 'mcp-servers/everything' } },
    })
  })

  it('runs parallel calls', async () => {
    const everything = set.get('everything')!
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => everything.callTool('get-sum', { a: i, b: 1 })),
    )
    expect(results.map((r) => textOf(r))).toEqual(
      Array.from({ length: 10 }, (_, i) => `The sum of ${i} and 1 is ${i + 1}.`),
    )
  })

  it('has no upstream for a name that is not configured', () => {
    expect(set.get('nope')).toBeUndefined()
  })
})
