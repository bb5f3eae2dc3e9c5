/**
 * Progressive disclosure with a synthetic 201-tool catalogue served by a real MCP server: the
 * `execute_code` description carries the full declarations up to `gateway.descriptionBudgetBytes`
 * and a compact index past it; `engine.searchTools` ranks tools and returns their declarations.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { renderDescription, type BindingTool } from '../../src/bindings/index.js'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { syntheticServer } from './catalog-helpers.js'

const TOOL_COUNT = 200
const bytes = (text: string) => Buffer.byteLength(text, 'utf8')

describe('progressive disclosure over a 201-tool catalogue', () => {
  let dir: string
  let rt: TestRuntime
  let tools: BindingTool[]
  let fullBytes: number
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-e2e-disclosure-'))
    rt = await testRuntime({ config: { servers: { synthetic: syntheticServer(dir, TOOL_COUNT) } } })
    tools = rt.engine
      .listTools(rt.principal())
      .map(({ server, name, ident, definition }) => ({ server, name, ident, definition }))
    fullBytes = bytes(renderDescription(tools, { budgetBytes: Number.MAX_SAFE_INTEGER }))
  })
  afterAll(async () => {
    await rt?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('lists every tool of the upstream', () => {
    expect(tools).toHaveLength(TOOL_COUNT + 1)
    expect(tools.map((t) => t.name)).toContain('archive_payment_1')
  })

  it('describes execute_code with a compact index past the default 16 KiB budget', () => {
    const description = rt.engine.describeExecuteCode(rt.principal())
    expect(fullBytes).toBeGreaterThan(16 * 1024)
    expect(bytes(description)).toBeLessThanOrEqual(16 * 1024)
    expect(description).toContain(
      `${TOOL_COUNT + 1} tools; their declarations do not fit here. Call \`search_tools\``,
    )
    expect(description).not.toContain('declare const tools')
    expect(description).toContain(
      'tools.synthetic.archive_customer_0({ id, limit? }) — The archive operation on customer records, batch 0.',
    )
    // Lines past the budget are counted, not shown.
    expect(description).toMatch(/… and \d+ more: use search_tools\.\n$/)
  })

  it('switches exactly at the budget: full declarations at N bytes, the index at N - 1', () => {
    const atBudget = renderDescription(tools, { budgetBytes: fullBytes })
    expect(bytes(atBudget)).toBe(fullBytes)
    expect(atBudget).toContain('declare const tools')
    const below = renderDescription(tools, { budgetBytes: fullBytes - 1 })
    expect(below).not.toContain('declare const tools')
    expect(below).toContain('their declarations do not fit here')
    expect(bytes(below)).toBeLessThanOrEqual(fullBytes - 1)
  })

  it('puts the full declarations in the engine description when the configured budget allows', async () => {
    const roomy = await testRuntime({
      config: {
        servers: { synthetic: syntheticServer(dir, TOOL_COUNT) },
        gateway: { descriptionBudgetBytes: fullBytes },
      },
    })
    try {
      const description = roomy.engine.describeExecuteCode(roomy.principal())
      expect(bytes(description)).toBe(fullBytes)
      expect(description).toContain(roomy.engine.declarations(roomy.principal()))
      expect(description).toContain(
        'archive_payment_1(args: Synthetic_ArchivePayment1Input): Promise<Synthetic_ArchivePayment1Output>',
      )
    } finally {
      await roomy.close()
    }
  })

  it('ranks tools for a query and returns declarations the model can call from', () => {
    const hits = rt.engine.searchTools(rt.principal(), 'archive payment records', 3)
    expect(hits).toHaveLength(3)
    // Both batches of archive_payment match every word; they come first.
    expect(
      hits
        .slice(0, 2)
        .map((h) => h.tool)
        .sort(),
    ).toEqual(['synthetic.archive_payment_0', 'synthetic.archive_payment_1'])
    const [best] = hits
    expect(best!.declaration).toContain(
      `${best!.tool.replace('synthetic.', 'tools.synthetic.')}(args: Synthetic_ArchivePayment`,
    )
    expect(best!.declaration).toMatch(/status: "ok" \| "missing"/)
    expect(hits[0]!.score).toBeGreaterThanOrEqual(hits[2]!.score)
  })

  it('puts an exact tool name first and honours the limit', () => {
    const [first] = rt.engine.searchTools(rt.principal(), 'strict_echo')
    expect(first?.tool).toBe('synthetic.strict_echo')
    expect(first?.declaration).toContain(
      'tools.synthetic.strict_echo(args: Synthetic_StrictEchoInput): Promise<Synthetic_StrictEchoOutput>',
    )
    expect(rt.engine.searchTools(rt.principal(), 'customer', 7)).toHaveLength(7)
    expect(rt.engine.searchTools(rt.principal(), 'zebra quantum')).toEqual([])
  })

  it('runs a tool found by search from model code', async () => {
    const result = await rt.engine.execute(
      rt.principal(),
      "return await tools.synthetic.archive_payment_1({ id: 'p-7' })",
    )
    expect(result).toMatchObject({ ok: true, result: { id: 'p-7', status: 'ok' } })
  })
})
