/**
 * What transpile.ts does before sucrase: unwrap one markdown fence (same lines), refuse syntax
 * the sandbox cannot run with the fix (unsupported.ts), and read the facts the engine's hints
 * use (facts.ts). Pure functions, no sandbox.
 */
import { describe, expect, it } from 'vitest'
import { stripFences } from '../../src/sandbox/fences.js'
import { transpile } from '../../src/sandbox/transpile.js'

const facts = (code: string) => {
  const t = transpile(code)
  if (!t.ok) throw new Error(t.error.message)
  return t.facts
}

describe('stripFences', () => {
  it('blanks the fence lines of one fenced block, keeping every line where it was', () => {
    expect(stripFences('```ts\nreturn 1\n```')).toBe('\nreturn 1\n')
    expect(stripFences('\n  ```typescript\nconst a = 1\nreturn a\n```\n')).toBe(
      '\n\nconst a = 1\nreturn a\n\n',
    )
    expect(stripFences('~~~\nreturn 2\n~~~')).toBe('\nreturn 2\n')
  })

  it('leaves anything else alone: text around the block, two blocks, a fence in a string', () => {
    for (const code of [
      'Here it is:\n```ts\nreturn 1\n```',
      '```ts\nreturn 1\n```\nand more',
      '```ts\nconst a = 1\n```\n```ts\nreturn a\n```',
      'return `\n```\n`',
      '```ts\nreturn 1\n~~~',
    ]) {
      expect(stripFences(code), code).toBe(code)
    }
  })
})

describe('transpile refuses what the sandbox cannot run, with the fix', () => {
  it.each([
    ["import fs from 'fs'\nreturn 1", 1, 'there are no modules in the sandbox'],
    ["const a = 1\nimport { b } from './b'", 2, 'there are no modules in the sandbox'],
    ["import x = require('x')", 1, 'there are no modules in the sandbox'],
    ['export const a = 1', 1, '`return` the value instead'],
    ['namespace N {\n  export const a = 1\n}', 1, 'use a plain object, e.g. const N = { … }'],
    ['class C {\n  @log m() {}\n}', 2, 'decorators are not supported'],
  ])('%j', (code, line, fix) => {
    const t = transpile(code)
    expect(t.ok).toBe(false)
    if (t.ok) return
    expect(t.error).toMatchObject({ code: 'SYNTAX_ERROR', line })
    expect(t.error.message).toContain(fix)
  })

  it('lets types through: import type, declare namespace, a namespace of types only', () => {
    for (const code of [
      "import type { X } from './x'\nreturn 1",
      'declare namespace N { const a: number }\nreturn 1',
      'namespace T { export type Id = string }\nreturn 1',
      'const module = { exports: 1 }\nreturn module.exports',
    ]) {
      expect(transpile(code).ok, code).toBe(true)
    }
  })
})

describe('code facts', () => {
  it('finds tool calls and whether each is awaited where it is made', () => {
    const f = facts(
      [
        'const a = await tools.s.one({})',
        "const b = tools.s['two-x']({})",
        'const [c] = await Promise.all([tools.s.three({})])',
        "const d = ['1'].map((id) => tools.s.four({ id }))",
        'return tools.s.five({})',
      ].join('\n'),
    )
    expect(f.toolCalls.map((c) => [c.line, c.path.join('.'), c.awaited])).toEqual([
      [1, 's.one', true],
      [2, 's.two-x', false],
      [3, 's.three', true],
      [4, 's.four', false],
      [5, 's.five', true],
    ])
  })

  it('counts a call kept in a variable as awaited when the variable is awaited later', () => {
    const f = facts(
      'const p = tools.s.one({})\nconst q = tools.s.two({})\nconst r = tools.s.three({})\nreturn [await p, ...(await Promise.all([q]))]',
    )
    expect(f.toolCalls.map((c) => [c.path.join('.'), c.awaited])).toEqual([
      ['s.one', true],
      ['s.two', true],
      ['s.three', false],
    ])
  })

  it('finds returns of the body only, the last declaration, and functions never mentioned', () => {
    const f = facts(
      'function helper() { return 1 }\nasync function main() { return helper() }\nconst total = 3\nfor (const x of []) {}',
    )
    expect(f.returnLines).toEqual([])
    expect(f.finalExpression).toBe(false)
    expect(f.lastStatement).toEqual({ line: 4, declares: 'total' })
    expect(f.uncalled).toEqual([{ name: 'main', line: 2 }])
    expect(facts('const run = async (): Promise<number> => 1').uncalled).toEqual([
      { name: 'run', line: 1 },
    ])
    expect(facts('const run = async () => 1\nrun()').uncalled).toEqual([])
    expect(facts('if (x) return 1\nconst f = () => { return 2 }').returnLines).toEqual([1])
  })

  it('finds forEach with an async callback and loops with no condition', () => {
    const f = facts('xs.forEach(async (x) => x)\nwhile (true) {}\nfor (;;) {}\nwhile (i < 3) {}')
    expect(f.asyncForEach).toEqual([1])
    expect(f.endlessLoops).toEqual([2, 3])
  })
})
