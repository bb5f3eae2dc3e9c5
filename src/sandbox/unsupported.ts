/**
 * Syntax that parses as TypeScript but cannot work in the sandbox, refused before it runs with
 * what to write instead. Without this, sucrase drops a namespace with values silently, an unused
 * `import` vanishes while a used one fails later as "not defined", and `export` or a decorator
 * fails inside QuickJS with "unexpected token".
 *
 * @module
 */
import { lineIndex, tokenType, type Parsed } from './sucrase-parser.js'
import type { TranspileError } from './transpile.js'

const T_IMPORT = tokenType('_import')
const T_EXPORT = tokenType('_export')
const T_PAREN_L = tokenType('parenL')
const T_DOT = tokenType('dot')
const T_AT = tokenType('at')
const T_NAME = tokenType('name')
const T_STRING = tokenType('string')
/** Tokens that declare a value: a namespace holding one is not types only. */
const VALUE_WORDS: ReadonlySet<number> = new Set(
  ['_const', '_let', '_var', '_function', '_class', '_enum'].map((n) => tokenType(n)),
)

const NO_MODULES =
  'there are no modules in the sandbox: `tools` and `console` are globals, so remove the import; files, network and services are reached through tools.<server>.<tool>(args)'

/** The first construct of `parsed` the sandbox cannot run, as a syntax error with its fix. */
export function unsupportedSyntax(parsed: Parsed): TranspileError | undefined {
  const { tokens, starts, source } = parsed
  const lineOf = lineIndex(source)
  const at = (index: number, what: string): TranspileError => {
    const offset = tokens[index]!.start
    const line = lineOf(offset)
    const column = offset - source.lastIndexOf('\n', offset - 1)
    return {
      code: 'SYNTAX_ERROR',
      message: `SyntaxError: ${what} (line ${line}, column ${column})`,
      line,
      column,
    }
  }
  for (let k = 0; k < starts.length; k++) {
    const from = starts[k]!
    const to = k + 1 < starts.length ? starts[k + 1]! : tokens.length - 1
    const first = tokens[from]!
    const second = tokens[from + 1]
    const word = source.slice(first.start, first.end)
    // sucrase marks a whole namespace as types and drops it, values and all.
    if (
      first.type === T_NAME &&
      (word === 'namespace' || word === 'module') &&
      (second?.type === T_NAME || second?.type === T_STRING) &&
      tokens.slice(from, to).some((t) => VALUE_WORDS.has(t.type))
    ) {
      return at(
        from,
        `a ${word} with values is not supported here (it would be dropped): use a plain object, e.g. const ${second.type === T_NAME ? source.slice(second.start, second.end) : 'M'} = { … }`,
      )
    }
    // `import type …`, `declare namespace …`: types only, erased.
    if (tokens.slice(from, to).every((t) => t.isType)) continue
    const typeImport = second !== undefined && source.slice(second.start, second.end) === 'type'
    if (
      first.type === T_IMPORT &&
      second?.type !== T_PAREN_L &&
      second?.type !== T_DOT &&
      !typeImport
    )
      return at(from, `import is not available: ${NO_MODULES}`)
    if (first.type === T_EXPORT) {
      return at(
        from,
        'export is not needed: the code is the body of an async function; `return` the value instead',
      )
    }
  }
  const decorator = tokens.findIndex((t) => t.type === T_AT)
  if (decorator >= 0)
    return at(
      decorator,
      'decorators are not supported in the sandbox: call the decorating function directly',
    )
  return undefined
}
