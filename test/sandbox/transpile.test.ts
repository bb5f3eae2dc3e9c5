/**
 * The transpiler: TypeScript stripped by sucrase, the final expression statement becomes the
 * result, and positions map back to the model's own source.
 */
import { describe, expect, it } from 'vitest'
import { transpile } from '../../src/sandbox/transpile.js'

function js(code: string): string {
  const r = transpile(code)
  if (!r.ok) throw new Error(r.error.message)
  return r.js
}

describe('transpile', () => {
  it('returns the value of a final expression statement', () => {
    expect(js('const x: number = 1\nx')).toBe('const x = 1\nreturn x')
    expect(js('await foo()\n// trailing comment\n')).toBe(
      'return await foo()\n// trailing comment\n',
    )
    expect(js('x;;')).toBe('return x;;')
    expect(js('let y = 2\ny + 1 // note\ninterface I { a: 1 }')).toBe(
      'let y = 2\nreturn y + 1 // note\n',
    )
  })

  it('leaves statements that are not expressions alone', () => {
    expect(js('if (a) { b }')).toBe('if (a) { b }')
    expect(js('const a = 1')).toBe('const a = 1')
    expect(js('async function f() {}')).toBe('async function f() {}')
    expect(js('label: for (;;) { break label }')).toBe('label: for (;;) { break label }')
    expect(js('return 5')).toBe('return 5')
    expect(js('{ 1 }')).toBe('{ 1 }')
  })

  it('follows ASI like the engine does (a newline before "(" continues the statement)', () => {
    expect(js('a\n(b)')).toBe('return a\n(b)')
    expect(js('const o = { a: 1 }\n({ b: 2 })')).toBe('const o = { a: 1 }\n({ b: 2 })')
  })

  it('treats contextual keywords used as names as expressions', () => {
    expect(js('type(1)')).toBe('return type(1)')
    expect(js('declare(1)')).toBe('return declare(1)')
  })

  it('reports a syntax error with line and column in the source', () => {
    const r = transpile('const a = 1\nconst x = ;')
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.error).toEqual({
      code: 'SYNTAX_ERROR',
      message: 'SyntaxError: Unexpected token (line 2, column 11)',
      line: 2,
      column: 11,
    })
  })

  it('refuses code that tries to close the function wrapper', () => {
    const r = transpile('}); globalThis.x = 1; (function () {')
    expect(r.ok).toBe(false)
  })

  it('maps a column in the JS back past removed type syntax and the inserted return', () => {
    const code = 'const a: number = 1; const b: string = "x"; foo(a as any, b)'
    const r = transpile(code)
    if (!r.ok) throw new Error('expected ok')
    const jsColumn = r.js.indexOf('foo') + 1
    expect(r.toSource({ line: 1, column: jsColumn })).toEqual({
      line: 1,
      column: code.indexOf('foo') + 1,
    })
  })
})
