/**
 * The engine end to end with real parts: a sandbox pool, the recording MCP fixture and
 * server-memory over stdio, policy and audit.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mapToolResult, sanitizeMessage } from '../../src/engine/index.js'
import { SERVERS, testRuntime, type TestRuntime } from '../helpers/runtime.js'

describe('mapToolResult', () => {
  it('prefers structuredContent, then parsed JSON text, then text, then the content array', () => {
    expect(
      mapToolResult({ content: [{ type: 'text', text: '{"a":1}' }], structuredContent: { b: 2 } }),
    ).toEqual({ b: 2 })
    expect(mapToolResult({ content: [{ type: 'text', text: '{"a":1}' }] })).toEqual({ a: 1 })
    expect(mapToolResult({ content: [{ type: 'text', text: '[1,2]' }] })).toEqual([1, 2])
    expect(mapToolResult({ content: [{ type: 'text', text: '{not json' }] })).toBe('{not json')
    expect(mapToolResult({ content: [{ type: 'text', text: 'plain' }] })).toBe('plain')
    expect(mapToolResult({ content: [{ type: 'text', text: '42' }] })).toBe(42)
    expect(mapToolResult({ content: [{ type: 'text', text: '42 apples' }] })).toBe('42 apples')
    const two = [
      { type: 'text', text: 'a' },
      { type: 'image', data: 'AA==', mimeType: 'image/png' },
    ]
    expect(mapToolResult({ content: two })).toEqual(two)
  })
})

describe('sanitizeMessage', () => {
  it('drops stack frames, node_modules paths and control characters, and caps the length', () => {
    const m = sanitizeMessage(
      'boom at /work/main/node_modules/x/index.js:1\n    at f (/srv/a.js:1:2)\u001b[31m',
    )
    expect(m).not.toMatch(/node_modules|\n|\u001b|at f/)
    expect(sanitizeMessage('x'.repeat(10_000)).length).toBeLessThanOrEqual(500)
  })
})

describe('Engine with real upstreams', () => {
  let rt: TestRuntime
  beforeAll(async () => {
    rt = await testRuntime({
      recording: true,
      config: {
        servers: {
          memory: {
            command: process.execPath,
            args: [SERVERS.memory],
            env: { MEMORY_FILE_PATH: '/tmp/sluice-engine-memory-placeholder.jsonl' },
          },
        },
        audit: { file: 'audit.jsonl' },
      },
    })
  })
  afterAll(async () => rt?.close())

  it('lists the tools of every server with sanitised identifiers', () => {
    const names = rt.engine.listTools(rt.principal()).map((t) => `${t.server}.${t.ident}`)
    expect(names).toContain('rec.get_sum')
    expect(names).toContain('memory.read_graph')
  })

  it('runs calls in parallel and sequence, maps results and reports every call', async () => {
    const result = await rt.engine.execute(
      rt.principal(),
      `const [a, b] = await Promise.all([tools.rec.read_item({ id: '1' }), tools.rec['get-sum']({ a: 2, b: 3 })])
       const c = await tools.rec.get_sum({ a: b, b: 1 })
       console.log('sum', c)
       return { a, b, c }`,
    )
    expect(result.error).toBeUndefined()
    expect(result.ok).toBe(true)
    expect(result.result).toEqual({ a: { id: '1', title: 'Item 1' }, b: 5, c: 6 })
    expect(result.logs).toEqual(['sum 6'])
    expect(result.calls.map((c) => [c.tool, c.ok, c.decision])).toEqual(
      expect.arrayContaining([
        ['rec.read_item', true, 'allow'],
        ['rec.get-sum', true, 'allow'],
      ]),
    )
    expect(result.calls).toHaveLength(3)
  })

  it('rejects invalid arguments before the upstream, naming the path and what was expected', async () => {
    const before = rt.recorded().length
    const result = await rt.engine.execute(
      rt.principal(),
      `return await tools.rec.get_sum({ a: 'two', b: 1 })`,
    )
    expect(result.ok).toBe(false)
    expect(result.error?.code).toBe('INVALID_ARGS')
    expect(result.error?.message).toContain('args.a')
    expect(result.error?.message).toContain('expected number')
    expect(rt.recorded().length).toBe(before)
  })

  it('names a missing required field', async () => {
    const result = await rt.engine.execute(
      rt.principal(),
      `return await tools.rec.send_email({ to: 'a@example.com' })`,
    )
    expect(result.error?.code).toBe('INVALID_ARGS')
    expect(result.error?.message).toContain('missing required field args.subject')
  })

  it('turns an upstream isError into a catchable TOOL_ERROR', async () => {
    const result = await rt.engine.execute(
      rt.principal(),
      `try { await tools.rec.fail({ why: 'nope' }) } catch (e) { return [e.code, e.message] }`,
    )
    expect(result.ok).toBe(true)
    expect(result.result).toEqual(['TOOL_ERROR', expect.stringContaining('failed: nope')])
  })

  it('gives the model type-check diagnostics with a "did you mean" for a misspelt tool', async () => {
    const result = await rt.engine.execute(
      rt.principal(),
      `const g = await tools.memory.read_grph({})\nreturn g`,
    )
    expect(result.ok).toBe(false)
    expect(result.error?.diagnostics?.[0]).toMatchObject({ line: 1 })
    expect(JSON.stringify(result.error?.diagnostics)).toMatch(/read_graph/)
  })

  it('writes an audit record for every execution and decision, chained', async () => {
    await rt.engine.execute(rt.principal(), `return await tools.rec.read_item({ id: 'audited' })`)
    const lines = readFileSync(join(rt.dir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    const types = lines.map((l) => l.type)
    expect(types).toContain('execution.start')
    expect(types).toContain('call.decision')
    expect(types).toContain('execution.end')
    for (let i = 1; i < lines.length; i++) expect(lines[i].prev).toBe(lines[i - 1].hash)
    expect(JSON.stringify(lines)).not.toContain('audited')
  })
})
