/**
 * What a program does that models often do not mean, read from sucrase's tokens at transpile
 * time (cached with the program, so it costs nothing on a repeat): calls on `tools` that are not
 * awaited, a `forEach` with an async callback, a function declared and never used, no `return`,
 * a loop with no way out.
 *
 * These are facts about the source only, never about a run: the engine looks at them when a run
 * shows a symptom (a result that is `undefined`, calls still running when the code returned, a
 * Promise in the result, an error) to name the line and the fix. Nothing here reads a value of
 * the guest, so the guest cannot steer it.
 *
 * @module
 */
import {
  ACCESS_ROLES,
  keyword,
  lineIndex,
  tokenType,
  type Parsed,
  type SucraseToken,
} from './sucrase-parser.js'

/** A call `tools.<server>.<tool>(…)` (or `tools.<x>(…)`) in the source. */
export interface ToolCallSite {
  line: number
  column: number
  /** The names after `tools`, as written (`['store', 'get-sum']` for `tools.store['get-sum']`). */
  path: string[]
  /**
   * Awaited: after `await`, inside `Promise.all(…)` and kin, returned by the body, or kept in a
   * variable that is later awaited (`const p = tools.…(); … await p`).
   */
  awaited: boolean
}

export interface CodeFacts {
  /** The last statement is an expression, whose value is the result. */
  finalExpression: boolean
  /** Lines of `return` statements of the body itself (not of functions inside it). */
  returnLines: number[]
  /** The last statement that runs; `declares`, the last `const|let|var <name>` up to it. */
  lastStatement?: { line: number; declares?: string }
  /** Functions declared at the top level and never mentioned again. */
  uncalled: Array<{ name: string; line: number }>
  /** Lines of `.forEach(async …)`. */
  asyncForEach: number[]
  toolCalls: ToolCallSite[]
  /** Lines of `while (true)`, `while (1)` and `for (;;)`. */
  endlessLoops: number[]
}

/** Facts kept per program at most (a generated program may hold thousands of calls). */
const MAX_SITES = 50

const T_NAME = tokenType('name')
const T_DOT = tokenType('dot')
const T_BRACKET_L = tokenType('bracketL')
const T_BRACKET_R = tokenType('bracketR')
const T_PAREN_L = tokenType('parenL')
const T_PAREN_R = tokenType('parenR')
const T_STRING = tokenType('string')
const T_RETURN = tokenType('_return')
const T_WHILE = tokenType('_while')
const T_FOR = tokenType('_for')
const T_TRUE = tokenType('_true')
const T_NUM = tokenType('num')
const T_SEMI = tokenType('semi')
const T_FUNCTION = tokenType('_function')
const T_ARROW = tokenType('arrow')
const T_EQ = tokenType('eq')
const T_OPTIONAL_CHAIN = tokenType('questionDot')
const DECLARE = new Set([tokenType('_const'), tokenType('_let'), tokenType('_var')])
const CK_AWAIT = keyword('_await')
const CK_ASYNC = keyword('_async')
const COMBINATORS: ReadonlySet<string> = new Set(['all', 'allSettled', 'race', 'any'])

const EMPTY: CodeFacts = Object.freeze({
  finalExpression: false,
  returnLines: [],
  uncalled: [],
  asyncForEach: [],
  toolCalls: [],
  endlessLoops: [],
}) as CodeFacts

/**
 * The facts of a parsed program; `finalOffset` is where transpile.ts found the final expression.
 * Never throws: a shape it does not expect yields fewer facts, never an error.
 */
export function codeFacts(parsed: Parsed, finalOffset: number | undefined): CodeFacts {
  try {
    return scan(parsed, finalOffset !== undefined)
  } catch {
    return { ...EMPTY, finalExpression: finalOffset !== undefined }
  }
}

function scan(parsed: Parsed, finalExpression: boolean): CodeFacts {
  const { tokens, source, functionScopes } = parsed
  const lineOf = lineIndex(source)
  const text = (t: SucraseToken | undefined) =>
    t === undefined ? '' : source.slice(t.start, t.end)
  const inFunction = (i: number) => functionScopes.some(([a, b]) => a <= i && i < b)
  const isName = (t: SucraseToken | undefined, name: string) =>
    t !== undefined && t.type === T_NAME && text(t) === name

  const facts: CodeFacts = {
    finalExpression,
    returnLines: [],
    uncalled: [],
    asyncForEach: [],
    toolCalls: [],
    endlessLoops: [],
  }
  /** For each open parenthesis: whether it holds the arguments of Promise.all and kin. */
  const parens: boolean[] = []
  /** Names read right after `await` or inside Promise.all(…): `const p = tools.…(); await p`. */
  const awaitedNames = new Set<string>()
  /** Call sites kept in a variable, to settle once every later use is known. */
  const held: Array<{ site: ToolCallSite; name: string }> = []
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    if (t.isType) continue
    if (
      t.type === T_NAME &&
      t.identifierRole !== null &&
      ACCESS_ROLES.has(t.identifierRole) &&
      (tokens[i - 1]?.contextualKeyword === CK_AWAIT || parens.includes(true))
    ) {
      awaitedNames.add(text(t))
    }
    if (t.type === T_PAREN_L) {
      const combinator =
        tokens[i - 1]?.type === T_NAME &&
        COMBINATORS.has(text(tokens[i - 1])) &&
        tokens[i - 2]?.type === T_DOT &&
        isName(tokens[i - 3], 'Promise')
      parens.push(combinator)
    } else if (t.type === T_PAREN_R) parens.pop()
    else if (t.type === T_RETURN && !inFunction(i) && facts.returnLines.length < MAX_SITES)
      facts.returnLines.push(lineOf(t.start))
    else if (t.type === T_WHILE || t.type === T_FOR) {
      const a = tokens[i + 1]
      const b = tokens[i + 2]
      const c = tokens[i + 3]
      const endless =
        a?.type === T_PAREN_L &&
        ((t.type === T_WHILE &&
          (b?.type === T_TRUE || (b?.type === T_NUM && text(b) === '1')) &&
          c?.type === T_PAREN_R) ||
          (t.type === T_FOR && b?.type === T_SEMI && c?.type === T_SEMI))
      if (endless && facts.endlessLoops.length < MAX_SITES) facts.endlessLoops.push(lineOf(t.start))
    } else if (
      isName(t, 'forEach') &&
      tokens[i - 1]?.type === T_DOT &&
      tokens[i + 1]?.type === T_PAREN_L &&
      tokens[i + 2]?.contextualKeyword === CK_ASYNC &&
      facts.asyncForEach.length < MAX_SITES
    ) {
      facts.asyncForEach.push(lineOf(t.start))
    } else if (
      isName(t, 'tools') &&
      t.identifierRole !== null &&
      ACCESS_ROLES.has(t.identifierRole) &&
      facts.toolCalls.length < MAX_SITES
    ) {
      const site = toolCall(i)
      if (site !== undefined) {
        facts.toolCalls.push(site)
        const name = tokens[i - 2]
        if (!site.awaited && tokens[i - 1]?.type === T_EQ && name?.type === T_NAME)
          held.push({ site, name: text(name) })
      }
    }
  }
  for (const { site, name } of held) if (awaitedNames.has(name)) site.awaited = true

  function toolCall(i: number): ToolCallSite | undefined {
    const path: string[] = []
    let j = i + 1
    for (;;) {
      const t = tokens[j]
      if (t?.type === T_DOT && tokens[j + 1]?.type === T_NAME) {
        path.push(text(tokens[j + 1]))
        j += 2
      } else if (
        t?.type === T_BRACKET_L &&
        tokens[j + 1]?.type === T_STRING &&
        tokens[j + 2]?.type === T_BRACKET_R
      ) {
        path.push(text(tokens[j + 1]).slice(1, -1))
        j += 3
      } else break
    }
    const open = tokens[j]?.type === T_OPTIONAL_CHAIN ? tokens[j + 1] : tokens[j]
    if (path.length === 0 || open?.type !== T_PAREN_L) return undefined
    const before = tokens[i - 1]
    const start = tokens[i]!.start
    const awaited =
      before?.contextualKeyword === CK_AWAIT ||
      parens.includes(true) ||
      (before?.type === T_RETURN && !inFunction(i - 1))
    return {
      line: lineOf(start),
      column: start - source.lastIndexOf('\n', start - 1),
      path,
      awaited,
    }
  }

  // The top-level statements: the last one that runs, and functions nobody mentions.
  const { starts } = parsed
  for (let k = 0; k < starts.length; k++) {
    const from = starts[k]!
    const to = k + 1 < starts.length ? starts[k + 1]! : tokens.length - 1
    const range = tokens.slice(from, to)
    if (range.every((t) => t.isType)) continue
    const first = range[0]!
    const declared = DECLARE.has(first.type) && range[1]?.type === T_NAME ? text(range[1]) : ''
    // The value to return is most likely the last one the code declared (`total` before a loop).
    const declares = declared === '' ? facts.lastStatement?.declares : declared
    facts.lastStatement = {
      line: lineOf(first.start),
      ...(declares === undefined ? {} : { declares }),
    }
    const fn = functionName(range, declared)
    if (fn !== undefined && !mentioned(fn.name, fn.index + from)) {
      if (facts.uncalled.length < MAX_SITES)
        facts.uncalled.push({ name: fn.name, line: lineOf(first.start) })
    }
  }

  /** `function f`, `async function f`, `const f = (async) function | (…) => | x =>`. */
  function functionName(
    range: readonly SucraseToken[],
    declared: string,
  ): { name: string; index: number } | undefined {
    let k = range[0]?.contextualKeyword === CK_ASYNC ? 1 : 0
    if (range[k]?.type === T_FUNCTION && range[k + 1]?.type === T_NAME)
      return { name: text(range[k + 1]), index: k + 1 }
    if (declared === '' || range[2]?.type !== T_EQ) return undefined
    k = range[3]?.contextualKeyword === CK_ASYNC && range[4] !== undefined ? 4 : 3
    if (range[k]?.type === T_FUNCTION) return { name: declared, index: 1 }
    if (range[k]?.type === T_NAME && range[k + 1]?.type === T_ARROW)
      return { name: declared, index: 1 }
    if (range[k]?.type !== T_PAREN_L) return undefined
    let depth = 0
    for (let m = k; m < range.length; m++) {
      const type = range[m]!.type
      if (type === T_PAREN_L) depth++
      else if (type === T_PAREN_R && --depth === 0) {
        // Skip a return type annotation (`): Promise<T> =>`).
        let n = m + 1
        while (range[n]?.isType === true) n++
        return range[n]?.type === T_ARROW ? { name: declared, index: 1 } : undefined
      }
    }
    return undefined
  }

  function mentioned(name: string, declaredAt: number): boolean {
    return tokens.some(
      (t, i) =>
        i !== declaredAt &&
        t.type === T_NAME &&
        t.identifierRole !== null &&
        ACCESS_ROLES.has(t.identifierRole) &&
        text(t) === name,
    )
  }

  return facts
}
