/**
 * Issue 3, "done when": a misspelt tool, a missing required field and a wrong type each give the
 * model an error that names the line and says what was expected. Through the real engine with
 * real upstreams (server-memory, server-everything, a synthetic server with a closed schema).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SERVERS, testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { syntheticServer } from './catalog-helpers.js'

describe('errors the model sees', () => {
  let rt: TestRuntime
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-e2e-errors-'))
    rt = await testRuntime({
      config: {
        servers: {
          memory: {
            command: process.execPath,
            args: [SERVERS.memory],
            env: { MEMORY_FILE_PATH: join(dir, 'memory.jsonl') },
          },
          everything: { command: process.execPath, args: [SERVERS.everything, 'stdio'] },
          synthetic: syntheticServer(dir, 1),
        },
      },
    })
  })
  afterAll(async () => {
    await rt?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const run = (code: string) => rt.engine.execute(rt.principal(), code)

  it('names the line of a misspelt tool and suggests the right one', async () => {
    const result = await run(
      [
        "await tools.memory.create_entities({ entities: [{ name: 'Ada', entityType: 'person', observations: [] }] })",
        '// the graph, with a typo:',
        'const graph = await tools.memory.read_graf()',
        'return graph.entities.length',
      ].join('\n'),
    )
    expect(result.ok).toBe(false)
    expect(result.error).toMatchObject({
      code: 'UNKNOWN_TOOL',
      message: 'tools.memory.read_graf does not exist; did you mean tools.memory.read_graph?',
      line: 3,
    })
    expect(result.error?.diagnostics).toEqual([
      {
        line: 3,
        column: 34,
        message: "Property 'read_graf' does not exist on tools.memory.",
        hint: 'did you mean tools.memory.read_graph?',
      },
    ])
    // The call before the typo ran; the typo was refused by the dispatcher, not the upstream.
    expect(result.calls.map((c) => `${c.tool}:${c.ok}:${c.code ?? ''}`)).toEqual([
      'memory.create_entities:true:',
      'memory.read_graf:false:UNKNOWN_TOOL',
    ])
  })

  it('names the line of a missing required field, the JSON path and the expected fields', async () => {
    const result = await run(
      [
        'const people = ["Ada", "Grace"]',
        'for (const name of people) {',
        '  await tools.memory.create_entities({ entities: [{ name, observations: [] }] })',
        '}',
      ].join('\n'),
    )
    expect(result.ok).toBe(false)
    expect(result.error).toMatchObject({
      code: 'INVALID_ARGS',
      message:
        'memory.create_entities: missing required field args.entities[0].entityType (string)',
      line: 3,
    })
    const [diagnostic, ...rest] = result.error?.diagnostics ?? []
    expect(rest).toEqual([])
    expect(diagnostic).toMatchObject({
      line: 3,
      hint: 'required: name: string; entityType: string; observations: string[]',
    })
    expect(diagnostic?.message).toContain("Property 'entityType' is missing")
    // Validated on the host: the upstream never saw the call.
    expect(result.calls).toEqual([
      expect.objectContaining({ tool: 'memory.create_entities', ok: false, code: 'INVALID_ARGS' }),
    ])
  })

  it('names the line of a wrong type and the type that was expected', async () => {
    const result = await run(
      [
        'const first = "1"',
        'const second = 2',
        'const sum = await tools.everything.get_sum({ a: first, b: second })',
        'return sum',
      ].join('\n'),
    )
    expect(result.ok).toBe(false)
    expect(result.error).toMatchObject({
      code: 'INVALID_ARGS',
      message: 'everything.get-sum: args.a: expected number, got string',
      line: 3,
    })
    expect(result.error?.diagnostics).toEqual([
      {
        line: 3,
        column: 46,
        message: "Type 'string' is not assignable to type 'number'.",
        hint: "field 'a' expects number",
      },
    ])
  })

  it('rejects an extra property where the schema says additionalProperties: false', async () => {
    const result = await run(
      [
        "const echoed = await tools.synthetic.strict_echo({ message: 'hi', loud: true })",
        'return echoed.message',
      ].join('\n'),
    )
    expect(result.ok).toBe(false)
    expect(result.error).toMatchObject({ code: 'INVALID_ARGS', line: 1 })
    expect(result.error?.message).toBe(
      "synthetic.strict_echo: unexpected field args.loud (not in the tool's input schema; fields: message)",
    )
    expect(result.error?.diagnostics?.[0]).toMatchObject({ line: 1 })
    expect(result.error?.diagnostics?.[0]?.message).toContain("'loud' does not exist")
  })

  it('reads typed outputs when the code is right, with no diagnostics', async () => {
    const result = await run(
      [
        "await tools.memory.create_entities({ entities: [{ name: 'Grace', entityType: 'person', observations: ['COBOL'] }] })",
        "const found = await tools.memory.search_nodes({ query: 'Grace' })",
        "const echoed = await tools.synthetic.strict_echo({ message: 'hi' })",
        'return { first: found.entities[0].name, echoed: echoed.message }',
      ].join('\n'),
    )
    expect(result.error).toBeUndefined()
    expect(result).toMatchObject({ ok: true, result: { first: 'Grace', echoed: 'hi' } })
  })
})
