/**
 * The `execute_code` description: the richest form that fits, switching at exact byte counts
 * (N fits, N - 1 falls to the next form), and never more than the direct tool list for `full`.
 */
import { describe, expect, it } from 'vitest'
import {
  compactIndex,
  describeTools,
  EXECUTE_CODE_HEADER,
  generateDeclarations,
  OUTER_TOOLS_OVERHEAD_BYTES,
  renderDescription,
  type BindingTool,
} from '../../src/bindings/index.js'
import { demoTools, tool } from './helpers.js'

const bytes = (s: string): number => new TextEncoder().encode(s).length
const HUGE = 1_000_000

/** A tool whose JSON Schema is far wordier than its TypeScript: the `full` form beats the list. */
function verboseTool(): BindingTool {
  const properties: Record<string, unknown> = {}
  for (let i = 0; i < 200; i++) properties[`flag${i}`] = { type: 'boolean' }
  return tool('cfg', 'set_flags', {
    description: 'Set feature flags.',
    inputSchema: {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties,
      additionalProperties: false,
    },
  })
}

/** `n` tools on `servers` servers with one-sentence descriptions. */
function many(n: number, servers = 1): BindingTool[] {
  return Array.from({ length: n }, (_, i) =>
    tool(`srv${i % servers}`, `tool_${i}`, {
      description: `Does thing number ${i}. More detail that the index leaves out.`,
      inputSchema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
    }),
  )
}

describe('the execute_code header', () => {
  it('states the contract: async body, return, tools, error codes, logs, Promise.all', () => {
    for (const needle of [
      'async function',
      '`return`',
      'tools.<server>.<tool>(args)',
      '`.code`',
      'console.log',
      'Promise.all',
      'No fetch, require, timers',
    ]) {
      expect(EXECUTE_CODE_HEADER).toContain(needle)
    }
    expect(renderDescription([], { budgetBytes: HUGE }).startsWith(EXECUTE_CODE_HEADER)).toBe(true)
  })
})

describe('describeTools', () => {
  it('declares in full when the full form fits the budget (N) and undercuts the direct list', () => {
    const tools = [verboseTool()]
    const full = describeTools(tools, { budgetBytes: HUGE })
    expect(full.form).toBe('full')
    expect(full.text).toContain(generateDeclarations(tools).dts)
    expect(describeTools(tools, { budgetBytes: bytes(full.text) })).toEqual(full)
    const below = describeTools(tools, { budgetBytes: bytes(full.text) - 1 })
    expect(below.form).toBe('compact')
    expect(below.text).toContain('set_flags(args?: { flag0?: boolean; flag1?: boolean;')
  })

  it('takes the compact form when the full one would cost more than the direct list', () => {
    const tools = demoTools(['memory'])
    const direct = JSON.stringify(
      tools.map((t) => ({
        name: t.name,
        description: t.definition.description,
        inputSchema: t.definition.inputSchema,
      })),
    )
    const { text, form } = describeTools(tools, { budgetBytes: HUGE })
    expect(form).toBe('compact')
    expect(bytes(text) + OUTER_TOOLS_OVERHEAD_BYTES).toBeLessThanOrEqual(bytes(direct))
    expect(text).toContain('Tool declarations (`search_tools` gives one with its docs):')
    expect(text).toContain(
      '    /** Read the entire knowledge graph */ read_graph(args?: {}): Promise<{ entities: { name: string; entityType: string; observations: string[] }[]; relations: { from: string; to: string; relationType: string }[] }>\n',
    )
    expect(text).not.toContain('The name of the entity')
  })

  it('switches from compact (N bytes) to the index (N - 1), which leaves room for a search', () => {
    const tools = many(12)
    const compact = describeTools(tools, { budgetBytes: HUGE })
    const n = bytes(compact.text)
    expect(describeTools(tools, { budgetBytes: n })).toEqual(compact)
    const index = describeTools(tools, { budgetBytes: n - 1 })
    expect(index.form).toBe('index')
    expect(index.text).toContain(
      '12 tools. Call `search_tools` with a few keywords to get the TypeScript declarations of the tools you need. Index:\n',
    )
    expect(index.text).toContain(`${compactIndex(tools)}\n`)
    expect(index.text).toContain('tools.srv0.tool_3({ id }) — Does thing number 3.\n')
  })

  it('keeps index and summary within budget - searchBytes: the room for one search answer', () => {
    const tools = many(12)
    const index = describeTools(tools, { budgetBytes: HUGE, searchBytes: HUGE - 1 })
    // Compact still fits the whole budget, so it wins over an index that would need a search.
    expect(index.form).toBe('compact')
    const compactBytes = bytes(index.text)
    const atRoom = describeTools(tools, { budgetBytes: compactBytes - 1, searchBytes: 0 })
    expect(atRoom.form).toBe('index')
    const roomBytes = bytes(atRoom.text)
    const withSearch = describeTools(tools, {
      budgetBytes: compactBytes - 1,
      searchBytes: compactBytes - 1 - roomBytes,
    })
    expect(withSearch).toEqual(atRoom)
    const oneShort = describeTools(tools, {
      budgetBytes: compactBytes - 1,
      searchBytes: compactBytes - roomBytes,
    })
    expect(oneShort.form).toBe('summary')
    expect(bytes(oneShort.text)).toBeLessThanOrEqual(roomBytes - 1)
  })

  it('summarises servers by tool names, counting what it cuts', () => {
    const tools = many(300, 30)
    const { text, form } = describeTools(tools, { budgetBytes: 2048, searchBytes: 1024 })
    expect(form).toBe('summary')
    expect(bytes(text)).toBeLessThanOrEqual(1024)
    expect(text).toContain('300 tools on 30 servers:\n')
    expect(text).toContain('tools.srv0 (10): tool_0, tool_120, tool_150,')
    expect(text).toMatch(/… and \d+ more servers\.\n$/)
  })

  it('cuts a server line it cannot finish and says how many names are left', () => {
    const tools = many(200, 1)
    const { text } = describeTools(tools, { budgetBytes: 1500, searchBytes: 500 })
    expect(text).toMatch(/\ntools\.srv0 \(200\): tool_0, tool_1, .*, … \d+ more\n$/)
    expect(bytes(text)).toBeLessThanOrEqual(1000)
  })

  it('rejects a negative or non-finite budget', () => {
    expect(() => describeTools([], { budgetBytes: -1 })).toThrow(
      new TypeError('renderDescription: budgetBytes must be a non-negative number'),
    )
    expect(() => describeTools([], { budgetBytes: 10, searchBytes: Number.NaN })).toThrow(
      new TypeError('renderDescription: searchBytes must be a non-negative number'),
    )
  })
})
