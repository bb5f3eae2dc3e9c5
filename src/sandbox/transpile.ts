/**
 * TypeScript → JavaScript for the guest, with sucrase (types stripped, lines kept).
 *
 * The model's code is the body of an async function. With no `return`, the value of a final
 * expression statement is the result: we find the last top-level statement with sucrase's own
 * parser (driven statement by statement, so ASI, comments, templates and regexes are handled by
 * a real parser, not a regex) and insert `return ` before it when it is an expression statement.
 * Positions reported by QuickJS in the JS are mapped back to the model's own source.
 *
 * @module
 */
import { transform } from 'sucrase'
import { codeFacts, type CodeFacts } from './facts.js'
import { stripFences } from './fences.js'
import { keyword, parseProgram, tokenType as token, type Parsed } from './sucrase-parser.js'
import { unsupportedSyntax } from './unsupported.js'

/** Statement-starting tokens that never begin an expression statement. */
const NON_EXPRESSION_STARTS: ReadonlySet<number> = new Set(
  [
    '_break',
    '_continue',
    '_debugger',
    '_do',
    '_for',
    '_function',
    '_if',
    '_return',
    '_switch',
    '_throw',
    '_try',
    '_var',
    '_let',
    '_const',
    '_while',
    '_with',
    '_class',
    '_export',
    '_declare',
    '_abstract',
    '_enum',
    '_type',
    'braceL',
    'semi',
    'at',
  ].map((n) => token(n)),
)
/** Contextual keywords that start a declaration when another word follows (`type X = …`). */
const DECLARATION_WORDS: ReadonlySet<number> = new Set(
  ['_type', '_interface', '_namespace', '_module', '_global', '_declare', '_abstract', '_enum'].map(
    (n) => keyword(n),
  ),
)
const T_NAME = token('name')
const T_COLON = token('colon')
const T_PAREN_L = token('parenL')
const T_DOT = token('dot')
const T_IMPORT = token('_import')
const T_FUNCTION = token('_function')
const CK_ASYNC = keyword('_async')
const WORD_TOKENS: ReadonlySet<number> = new Set([
  T_NAME,
  T_FUNCTION,
  ...['_class', '_const', '_var', '_let', '_enum', '_abstract', '_declare', '_type'].map((n) =>
    token(n),
  ),
])

export interface SourcePosition {
  line: number
  column: number
}

export interface TranspileError {
  code: 'SYNTAX_ERROR'
  message: string
  line?: number
  column?: number
}

export type TranspileResult =
  | {
      ok: true
      /** Body of the async function, in JavaScript. Same line count as the source. */
      js: string
      /** Lines of `js`. */
      lines: number
      /** Maps a 1-based position in `js` to the model's own source. */
      toSource(position: SourcePosition): SourcePosition
      /** What the code does that models often do not mean (facts.ts), for hints. */
      facts: CodeFacts
    }
  | { ok: false; error: TranspileError }

function syntaxError(e: unknown): TranspileError {
  // The parser recursed past the host's stack: say what that means for the code.
  if (e instanceof RangeError)
    return { code: 'SYNTAX_ERROR', message: 'SyntaxError: the code is nested too deeply to parse' }
  const err = e as { message?: unknown; loc?: { line?: unknown; column?: unknown } }
  const raw = typeof err.message === 'string' ? err.message : 'invalid syntax'
  const message = raw.replace(/\s*\(\d+:\d+\)\s*$/, '')
  const line = typeof err.loc?.line === 'number' ? err.loc.line : undefined
  const column = typeof err.loc?.column === 'number' ? err.loc.column : undefined
  const where =
    line === undefined ? '' : ` (line ${line}${column === undefined ? '' : `, column ${column}`})`
  return {
    code: 'SYNTAX_ERROR',
    message: `SyntaxError: ${message}${where}`,
    ...(line === undefined ? {} : { line }),
    ...(column === undefined ? {} : { column }),
  }
}

/** Offset at which to insert `return `, or undefined when the last statement is no expression. */
function finalExpressionOffset(parsed: Parsed): number | undefined {
  const { starts } = parsed
  const tokens = parsed.tokens
  // The eof token is the last one; statements end before it.
  const last = tokens.length - 1
  for (let k = starts.length - 1; k >= 0; k--) {
    const from = starts[k]!
    const to = k + 1 < starts.length ? starts[k + 1]! : last
    const range = tokens.slice(from, to)
    // Type-only statements vanish at run time; look at the one before.
    if (range.every((t) => t.isType)) continue
    const first = range[0]!
    const second = range[1]
    if (range.length === 1 && first.type === token('semi')) continue
    if (NON_EXPRESSION_STARTS.has(first.type)) return undefined
    if (first.type === T_IMPORT && second?.type !== T_PAREN_L && second?.type !== T_DOT)
      return undefined
    if (first.type === T_NAME) {
      if (second?.type === T_COLON) return undefined
      if (first.contextualKeyword === CK_ASYNC && second?.type === T_FUNCTION) return undefined
      if (
        DECLARATION_WORDS.has(first.contextualKeyword) &&
        second !== undefined &&
        WORD_TOKENS.has(second.type)
      ) {
        return undefined
      }
    }
    return first.start
  }
  return undefined
}

const RETURN = 'return '

/** Maps a column in a JS line to its line in the TS text it came from (sucrase only deletes). */
function mapColumn(tsLine: string, jsLine: string, jsColumn: number): number {
  let i = 0
  for (let j = 0; j < jsColumn - 1 && j < jsLine.length; j++) {
    while (i < tsLine.length && tsLine[i] !== jsLine[j]) i++
    if (i >= tsLine.length) return jsColumn
    i++
  }
  // Skip what sucrase removed right before the target character.
  const target = jsLine[jsColumn - 1]
  if (target !== undefined) {
    let k = i
    while (k < tsLine.length && tsLine[k] !== target) k++
    if (k < tsLine.length) i = k
  }
  return i + 1
}

/**
 * Strips types from the model's code and makes the value of a final expression statement the
 * result. Never throws: a syntax error comes back with line and column in the model's source.
 */
export function transpile(code: string): TranspileResult {
  // A program wrapped in a markdown fence means the program inside it: unwrap it, same lines.
  let source = stripFences(code)
  let inserted: SourcePosition | undefined
  let facts: CodeFacts
  try {
    const parsed = parseProgram(source)
    const unsupported = unsupportedSyntax(parsed)
    if (unsupported !== undefined) return { ok: false, error: unsupported }
    const offset = finalExpressionOffset(parsed)
    facts = codeFacts(parsed, offset)
    if (offset !== undefined) {
      const before = source.slice(0, offset)
      source = before + RETURN + source.slice(offset)
      const line = before.split('\n').length
      inserted = { line, column: offset - before.lastIndexOf('\n') }
    }
  } catch (e) {
    return { ok: false, error: syntaxError(e) }
  }
  let js: string
  try {
    js = transform(source, { transforms: ['typescript'], disableESTransforms: true }).code
  } catch (e) {
    return { ok: false, error: syntaxError(e) }
  }
  let tsLines: string[] | undefined
  let jsLines: string[] | undefined
  return {
    ok: true,
    js,
    lines: countLines(js),
    facts,
    toSource({ line, column }) {
      tsLines ??= source.split('\n')
      jsLines ??= js.split('\n')
      const tsLine = tsLines[line - 1]
      const jsLine = jsLines[line - 1]
      let mapped =
        tsLine === undefined || jsLine === undefined ? column : mapColumn(tsLine, jsLine, column)
      if (inserted !== undefined && line === inserted.line && mapped >= inserted.column) {
        mapped =
          mapped >= inserted.column + RETURN.length ? mapped - RETURN.length : inserted.column
      }
      return { line, column: Math.max(1, mapped) }
    },
  }
}

function countLines(text: string): number {
  let n = 1
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++
  return n
}

/** Source bytes the transpile cache keeps at most. */
const CACHE_MAX_CHARS = 4 * 1024 * 1024
const cache = new Map<string, TranspileResult>()
let cachedChars = 0

/**
 * {@link transpile}, remembered by the exact code: agents send the same program again and again
 * (retries, loops over inputs), and the result is immutable. Least recently used goes first.
 */
export function transpileCached(code: string): TranspileResult {
  const hit = cache.get(code)
  if (hit !== undefined) {
    cache.delete(code)
    cache.set(code, hit)
    return hit
  }
  const result = transpile(code)
  if (code.length <= CACHE_MAX_CHARS / 4) {
    cache.set(code, result)
    cachedChars += code.length
    for (const [old] of cache) {
      if (cachedChars <= CACHE_MAX_CHARS) break
      cache.delete(old)
      cachedChars -= old.length
    }
  }
  return result
}
