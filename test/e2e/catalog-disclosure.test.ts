/**
 * Progressive disclosure with a synthetic 201-tool catalogue served by a real MCP server: the
 * `execute_code` description declares the tools when they fit `gateway.descriptionBudgetBytes`
 * and summarises them past it; `engine.searchTools` ranks tools and declares the best within
 * `gateway.searchBudgetBytes`.
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
  let compactBytes: number
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-e2e-disclosure-'))
    rt = await testRuntime({ config: { servers: { synthetic: syntheticServer(dir, TOOL_COUNT) } } })
    tools = rt.engine
      .listTools(rt.principal())
      .map(({ server, name, ident, definition }) => ({ server, name, ident, definition }))
    compactBytes = bytes(renderDescription(tools, { budgetBytes: Number.MAX_SAFE_INTEGER }))
  })
  afterAll(async () => {
    await rt?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('lists every tool of the upstream', () => {
    expect(tools).toHaveLength(TOOL_COUNT + 1)
    expect(tools.map((t) => t.name)).toContain('archive_payment_1')
  })

  it('describes execute_code by a server summary within the default 3 KiB footprint', () => {
    const description = rt.engine.describeExecuteCode(rt.principal())
    // The summary leaves gateway.searchBudgetBytes (1 KiB) of the 3 KiB for one search answer.
    expect(bytes(description)).toBeLessThanOrEqual(3 * 1024 - 1024)
    expect(description).toContain(
      'Call `search_tools` with a few keywords to get the TypeScript declarations of the tools you need.\n' +
        `${TOOL_COUNT + 1} tools on 1 server:\n` +
        'tools.synthetic (201): archive_customer_0, archive_customer_1, archive_invoice_0,',
    )
    expect(description).not.toContain('declare const tools')
    // Names past the budget are counted, not shown.
    expect(description).toMatch(/, … \d+ more\n$/)
  })

  it('switches exactly at the budget: compact declarations at N bytes, the index at N - 1', () => {
    const compact = renderDescription(tools, { budgetBytes: compactBytes, searchBytes: 1024 })
    expect(bytes(compact)).toBe(compactBytes)
    expect(compact).toContain('declare const tools')
    const below = renderDescription(tools, { budgetBytes: compactBytes - 1, searchBytes: 1024 })
    expect(below).not.toContain('declare const tools')
    expect(below).toContain(`${TOOL_COUNT + 1} tools. Call \`search_tools\``)
    expect(below).toContain(
      'tools.synthetic.archive_customer_0({ id, limit? }) — The archive operation on customer records, batch 0.\n',
    )
    expect(bytes(below)).toBeLessThanOrEqual(compactBytes - 1 - 1024)
  })

  it('declares every tool in the engine description when the configured budget allows', async () => {
    const roomy = await testRuntime({
      config: {
        servers: { synthetic: syntheticServer(dir, TOOL_COUNT) },
        gateway: { descriptionBudgetBytes: compactBytes },
      },
    })
    try {
      const description = roomy.engine.describeExecuteCode(roomy.principal())
      expect(bytes(description)).toBe(compactBytes)
      expect(description).toContain(
        '/** The archive operation on payment records, batch 1. */ archive_payment_1(args: { id: string; limit?: number }): Promise<{ id: string; status: "ok" | "missing" }>\n',
      )
    } finally {
      await roomy.close()
    }
  })

  it('ranks tools for a query and declares them within the 1 KiB search budget', () => {
    const { matches, more } = rt.engine.searchTools(rt.principal(), 'archive payment records', 5)
    // Both batches of archive_payment match every word; they come first.
    expect(
      matches
        .slice(0, 2)
        .map((h) => h.tool)
        .sort(),
    ).toEqual(['synthetic.archive_payment_0', 'synthetic.archive_payment_1'])
    const [best] = matches
    expect(best!.declaration).toContain(
      `${best!.tool.replace('synthetic.', 'tools.synthetic.')}(args: Synthetic_ArchivePayment`,
    )
    expect(best!.declaration).toMatch(/status: "ok" \| "missing"/)
    expect(matches.length + more.length).toBe(5)
    expect(bytes(matches.map((m) => m.declaration).join(''))).toBeLessThanOrEqual(1024)
    expect(matches[0]!.score).toBeGreaterThanOrEqual(matches[1]!.score)
  })

  it('puts an exact tool name first and honours the limit', () => {
    const [first] = rt.engine.searchTools(rt.principal(), 'strict_echo').matches
    expect(first?.tool).toBe('synthetic.strict_echo')
    expect(first?.declaration).toContain(
      'tools.synthetic.strict_echo(args: Synthetic_StrictEchoInput): Promise<Synthetic_StrictEchoOutput>',
    )
    const seven = rt.engine.searchTools(rt.principal(), 'customer', 7)
    expect(seven.matches.length + seven.more.length).toBe(7)
    expect(rt.engine.searchTools(rt.principal(), 'zebra quantum')).toEqual({
      matches: [],
      more: [],
    })
  })

  it('runs a tool found by search from model code', async () => {
    const result = await rt.engine.execute(
      rt.principal(),
      "return await tools.synthetic.archive_payment_1({ id: 'p-7' })",
    )
    expect(result).toMatchObject({ ok: true, result: { id: 'p-7', status: 'ok' } })
  })
})
