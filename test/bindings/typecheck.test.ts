import { describe, expect, it } from 'vitest'
import { generateDeclarations } from '../../src/bindings/index.js'
// The synchronous checker; src code goes through the lazy, async wrapper in index.ts.
import { typecheckCode } from '../../src/bindings/typecheck.js'
import { demoTools } from './helpers.js'

const { dts } = generateDeclarations(demoTools())
const check = (code: string, options = {}) => typecheckCode(code, dts, options)

describe('typecheckCode', () => {
  it('accepts valid model code: await, Promise.all, console, try/catch on .code, return', () => {
    const code = [
      'const graph = await tools.memory.read_graph()',
      'const [a, b] = await Promise.all([',
      "  tools.filesystem.read_text_file({ path: '/tmp/a', head: 3 }),",
      "  tools.memory.search_nodes({ query: 'x' }),",
      '])',
      'console.log(graph.entities.length, a.content, b.relations)',
      'try {',
      "  await tools.memory.create_entities({ entities: [{ name: 'n', entityType: 't', observations: [] }] })",
      '} catch (e) {',
      '  if (e.code === "TOOL_DENIED") return null',
      '}',
      'const sum = await tools.everything.get_sum({ a: 1, b: 2 })',
      'const env = await tools.everything.get_env()',
      'return { n: graph.entities.map((x) => x.name), sum, env: env.PATH }',
    ].join('\n')
    expect(check(code)).toEqual([])
  })

  it('accepts a final expression statement as the result', () => {
    expect(check("await tools.memory.search_nodes({ query: 'q' })")).toEqual([])
  })

  it('hints the tool name for a misspelt tool, in the model coordinates', () => {
    expect(check('const x = 1\nconst g = await tools.memory.read_grph()')).toEqual([
      {
        line: 2,
        column: 30,
        message: "Property 'read_grph' does not exist on tools.memory.",
        hint: 'did you mean tools.memory.read_graph?',
      },
    ])
  })

  it('hints the server name for a misspelt server', () => {
    expect(check('await tools.memroy.read_graph()')).toEqual([
      {
        line: 1,
        column: 13,
        message: "Property 'memroy' does not exist on tools.",
        hint: 'did you mean tools.memory?',
      },
    ])
  })

  it('lists the tools of a server when nothing is close', () => {
    const [d] = check('await tools.memory.frobnicate()')
    expect(d?.hint).toMatch(
      /^tools\.memory has: add_observations, create_entities, .*search_nodes$/,
    )
  })

  it("hints a misspelt field with TypeScript's own suggestion", () => {
    expect(check("await tools.memory.search_nodes({ quer: 'x' })")).toEqual([
      {
        line: 1,
        column: 35,
        message:
          "Object literal may only specify known properties, but 'quer' does not exist in type 'Memory_SearchNodesInput'. Did you mean to write 'query'?",
        hint: "did you mean 'query'?",
      },
    ])
  })

  it('lists the known fields when no field name is close', () => {
    const [d] = check("await tools.filesystem.read_text_file({ path: 'p', zzzzzz: 1 })")
    expect(d?.hint).toBe('known fields: path, tail, head')
  })

  it('names the line and the expected fields when a required field is missing', () => {
    const diagnostics = check(
      "const a = 1\n\nawait tools.memory.create_entities({ entities: [{ name: 'x' }] })",
    )
    expect(diagnostics).toHaveLength(1)
    expect(diagnostics[0]).toMatchObject({ line: 3, column: 49 })
    expect(diagnostics[0]!.message).toContain('is missing the following properties')
    expect(diagnostics[0]!.message).toContain('entityType, observations')
    expect(diagnostics[0]!.hint).toBe(
      'required: name: string; entityType: string; observations: string[]',
    )
  })

  it('names the missing field of an empty argument', () => {
    expect(check('await tools.memory.search_nodes({})')).toEqual([
      {
        line: 1,
        column: 33,
        message:
          "Argument of type '{}' is not assignable to parameter of type 'Memory_SearchNodesInput'.\n  Property 'query' is missing in type '{}' but required in type 'Memory_SearchNodesInput'.",
        hint: 'required: query: string',
      },
    ])
  })

  it('says what type a field expects', () => {
    expect(check("await tools.everything.get_sum({ a: '1', b: 2 })")).toEqual([
      {
        line: 1,
        column: 34,
        message: "Type 'string' is not assignable to type 'number'.",
        hint: "field 'a' expects number",
      },
    ])
  })

  it('explains that fetch, require and timers do not exist in the sandbox', () => {
    expect(check("await fetch('http://x')")).toEqual([
      {
        line: 1,
        column: 7,
        message: "Cannot find name 'fetch'.",
        hint: 'there is no network in the sandbox: call a tool instead, await tools.<server>.<tool>(args)',
      },
    ])
    expect(check('setTimeout(() => 1, 10)')[0]?.hint).toContain(
      'there are no timers in the sandbox: await the tool calls directly',
    )
  })

  it("replaces TypeScript's advice to install @types/node with what the sandbox offers", () => {
    for (const code of ["const fs = require('fs')", 'return process.env.HOME']) {
      const [d] = check(code)
      expect(d?.message, code).toMatch(/^Cannot find name '(require|process)'\.$/)
      expect(d?.hint, code).toMatch(/^there (are no modules|is no process) in the sandbox/)
      expect(JSON.stringify(d), code).not.toContain('@types/node')
    }
  })

  it('reports syntax errors at the model line, clamped to the code', () => {
    expect(check('const = 1')[0]).toMatchObject({ line: 1, column: 7 })
    const unclosed = check('const a = 1\nfoo(')
    expect(unclosed.every((d) => d.line >= 1 && d.line <= 2)).toBe(true)
  })

  it('ignores reads of unknown results unless asked', () => {
    const code = "const r = await tools.everything.echo({ message: 'hi' })\nreturn r.content"
    expect(check(code)).toEqual([])
    expect(check(code, { reportUnknownAccess: true })).toEqual([
      { line: 2, column: 8, message: "'r' is of type 'unknown'." },
    ])
  })

  it('returns maxDiagnostics diagnostics and cuts at maxDiagnostics + 1', () => {
    const code = 'await tools.memory.a1()\nawait tools.memory.a2()\nawait tools.memory.a3()'
    expect(check(code, { maxDiagnostics: 3 }).map((d) => d.line)).toEqual([1, 2, 3])
    expect(check(code, { maxDiagnostics: 2 }).map((d) => d.line)).toEqual([1, 2])
  })

  it('rejects a bad maxDiagnostics', () => {
    expect(() => check('1', { maxDiagnostics: -1 })).toThrow(
      new TypeError('typecheckCode: maxDiagnostics must be a non-negative integer'),
    )
  })

  it('gives the same answer from the cache for the same declarations', () => {
    const code = 'await tools.memory.read_grph()'
    expect(check(code)).toEqual(check(code))
    const other = generateDeclarations(demoTools(['memory'])).dts
    expect(
      typecheckCode('await tools.filesystem.read_file({ path: "x" })', other)[0]?.message,
    ).toBe("Property 'filesystem' does not exist on tools.")
  })
})
