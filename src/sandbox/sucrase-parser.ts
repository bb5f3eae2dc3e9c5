/**
 * sucrase's own parser, driven statement by statement over the model's code: the tokens, where
 * each top-level statement starts, and the function scopes. transpile.ts finds the final
 * expression with it, facts.ts what the code does that a model usually did not mean.
 *
 * These are sucrase 3.35 internals (the version is pinned). They keep module-level state, hence
 * live `require`s and one parse at a time, synchronously.
 *
 * @module
 */
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export interface SucraseToken {
  type: number
  contextualKeyword: number
  start: number
  end: number
  isType: boolean
  /** 0 access, 2–4 declarations, 8 object shorthand; null for property names and keywords. */
  identifierRole: number | null
}
interface SucraseScope {
  startTokenIndex: number
  endTokenIndex: number
  isFunctionScope: boolean
}
interface SucraseBase {
  initParser(input: string, jsx: boolean, typescript: boolean, flow: boolean): void
  augmentError(error: unknown): Error & { loc?: { line: number; column: number } }
  state: { tokens: SucraseToken[]; scopes: SucraseScope[]; error: unknown }
}
const base = require('sucrase/dist/parser/traverser/base.js') as SucraseBase
const tokenizer = require('sucrase/dist/parser/tokenizer/index.js') as {
  nextToken(): void
  eat(type: number): boolean
}
const statement = require('sucrase/dist/parser/traverser/statement.js') as {
  parseStatement(declaration: boolean): void
}
const { TokenType } = require('sucrase/dist/parser/tokenizer/types.js') as {
  TokenType: Record<string, number>
}
const { ContextualKeyword } = require('sucrase/dist/parser/tokenizer/keywords.js') as {
  ContextualKeyword: Record<string, number>
}

/** A token type by sucrase's name (`_return`, `parenL`); throws when sucrase changed. */
export function tokenType(name: string): number {
  const v = TokenType[name]
  if (v === undefined) throw new Error(`sucrase internals changed: no token ${name}`)
  return v
}

/** A contextual keyword by sucrase's name (`_async`, `_await`). */
export function keyword(name: string): number {
  const v = ContextualKeyword[name]
  if (v === undefined) throw new Error(`sucrase internals changed: no keyword ${name}`)
  return v
}

/** Identifier roles that read a name (rather than declare it, or name a property). */
export const ACCESS_ROLES: ReadonlySet<number> = new Set([0, 1, 8])

/** The parse of one program. */
export interface Parsed {
  readonly source: string
  /** Every token; the last one is `eof`. */
  readonly tokens: readonly SucraseToken[]
  /** Index in `tokens` of the first token of each top-level statement. */
  readonly starts: readonly number[]
  /** Token ranges `[start, end)` of every function body and parameter list. */
  readonly functionScopes: ReadonlyArray<readonly [number, number]>
}

const T_EOF = tokenType('eof')

/** Parses `source` as TypeScript; throws sucrase's error (with `loc`) on a syntax error. */
export function parseProgram(source: string): Parsed {
  base.initParser(source, false, true, false)
  tokenizer.nextToken()
  const starts: number[] = []
  while (!tokenizer.eat(T_EOF) && !base.state.error) {
    starts.push(base.state.tokens.length)
    statement.parseStatement(true)
  }
  if (base.state.error) throw base.augmentError(base.state.error)
  const { tokens, scopes } = base.state
  return {
    source,
    tokens,
    starts,
    functionScopes: scopes
      .filter((s) => s.isFunctionScope)
      .map((s) => [s.startTokenIndex, s.endTokenIndex] as const),
  }
}

/** 1-based line of an offset, by binary search over the offsets of line starts. */
export function lineIndex(source: string): (offset: number) => number {
  const starts = [0]
  for (let i = source.indexOf('\n'); i >= 0; i = source.indexOf('\n', i + 1)) starts.push(i + 1)
  return (offset) => {
    let lo = 0
    let hi = starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (starts[mid]! <= offset) lo = mid
      else hi = mid - 1
    }
    return lo + 1
  }
}
