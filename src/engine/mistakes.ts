/**
 * The mistakes models make most, named with their line and their fix.
 *
 * Two kinds. A failed run gets a hint appended to its error (`'require' is not defined` → there
 * are no modules, `tools` is global). A run that succeeded with a wrong answer (a tool call
 * never awaited, `forEach` with an async callback, no `return`, `main()` never called, an
 * argument the tool ignored) gets a warning. A warning needs a symptom of the run and a fact of
 * the source together: calls still running when the code returned, a Promise in the result or
 * `[object Promise]` in its text, a result that is `undefined`; the facts (src/sandbox/facts.ts)
 * say where. Everything here reads the host's records and the model's source; nothing the guest
 * computed decides a hint.
 *
 * @module
 */
import { NO_MODULES_ADVICE, sandboxAdvice } from '../bindings/index.js'
import type { CodeFacts, SandboxError, SandboxOutcome, SandboxWarning } from '../sandbox/index.js'
import { nearest } from '../text.js'
import type { CallRecord } from '../types.js'
import type { CallNote } from './dispatch.js'
import { foldName, serverPath, toolPath, toolsNamed, type VisibleTool } from './suggest.js'

/** Warning codes the engine adds (docs/errors.md, "Warning codes"). */
export const MISTAKE_WARNING_CODES = [
  'UNAWAITED_CALL',
  'ASYNC_FOREACH',
  'NO_RESULT',
  'FUNCTION_NOT_CALLED',
  'UNKNOWN_ARGUMENT',
] as const

/** Warnings of one kind at most (one per line is enough to act on). */
const MAX_PER_KIND = 3

export interface MistakeContext {
  /** The model's code as sent. */
  code: string
  outcome: SandboxOutcome
  /** The tools this caller can see. */
  visible: readonly VisibleTool[]
  calls: readonly CallRecord[]
  notes: readonly CallNote[]
}

const NO_FACTS: CodeFacts = {
  finalExpression: false,
  returnLines: [],
  uncalled: [],
  asyncForEach: [],
  toolCalls: [],
  endlessLoops: [],
}

/** The warnings of a successful run: the sandbox's, with the line of the return, and the engine's. */
export function silentMistakes(ctx: MistakeContext): SandboxWarning[] {
  const { outcome, calls } = ctx
  const facts = outcome.facts ?? NO_FACTS
  const out: SandboxWarning[] = outcome.warnings.map((w) => withReturnLine(w, facts))
  const unsettled = outcome.unsettledCalls ?? []
  const promiseInResult = outcome.warnings.some((w) => w.code === 'PROMISE_IN_RESULT')
  const failed = calls.filter((c) => !c.ok).map((c) => c.tool)
  const nothing = outcome.result === undefined

  for (const line of facts.asyncForEach.slice(0, MAX_PER_KIND)) {
    out.push({
      code: 'ASYNC_FOREACH',
      line,
      message: `line ${line}: forEach does not wait for an async callback, so the code returned before the callbacks finished; use for (const x of list) { await … } or await Promise.all(list.map(async (x) => …))`,
    })
  }

  // A call site is blamed only with a symptom that points at it: a Promise where a value should
  // be, or a call to the same tool still running or failed unseen when the code returned.
  const pending = [...unsettled, ...failed]
  const candidates = facts.toolCalls.filter(
    (c) => !c.awaited && c.path.length >= 2 && !facts.asyncForEach.includes(c.line),
  )
  // Only code with a call it did not await pays for looking through its result and logs.
  const promiseShown =
    candidates.length > 0 &&
    ((outcome.result !== undefined &&
      JSON.stringify(outcome.result).includes('[object Promise]')) ||
      outcome.logs.some((l) => l.includes('[object Promise]')))
  const blamed = candidates.filter(
    (c) => promiseInResult || promiseShown || pending.some((label) => sameTool(c.path, label)),
  )
  if (blamed.length > 0) {
    for (const site of blamed.slice(0, MAX_PER_KIND)) {
      const call = `tools.${site.path.join('.')}(…)`
      out.push({
        code: 'UNAWAITED_CALL',
        line: site.line,
        message: `line ${site.line}: ${call} is not awaited, so the code used a Promise instead of its result, and a failure would go unseen; write await ${call}, or for a list await Promise.all(list.map(…))`,
      })
    }
  } else if (unsettled.length > 0 && facts.asyncForEach.length === 0) {
    const names = [...new Set(unsettled)].slice(0, 5).join(', ')
    out.push({
      code: 'UNAWAITED_CALL',
      message: `${unsettled.length} tool call(s) (${names}) were still running when the code returned: their results were never used; await every call, or await Promise.all([...]) for several`,
    })
  }

  if (nothing) {
    for (const fn of facts.uncalled.slice(0, MAX_PER_KIND)) {
      out.push({
        code: 'FUNCTION_NOT_CALLED',
        line: fn.line,
        message: `line ${fn.line}: ${fn.name}() is declared but never called, so its code did not run; end the code with return await ${fn.name}()`,
      })
    }
    const last = facts.lastStatement
    if (
      !facts.finalExpression &&
      facts.returnLines.length === 0 &&
      facts.uncalled.length === 0 &&
      last !== undefined
    ) {
      const value = last.declares ?? '<value>'
      out.push({
        code: 'NO_RESULT',
        line: last.line,
        message: `line ${last.line}: the code returned nothing: there is no return, and the last statement is not an expression; end it with return ${value}`,
      })
    }
  }

  for (const note of ctx.notes.slice(0, MAX_PER_KIND)) {
    const site = facts.toolCalls.find((c) => callsTool(c.path, note))
    const label = `${serverPath(note.tool.server)}.${note.tool.ident}`
    const fields = note.fields.map((f) => {
      const near = nearest(f, note.known)
      return near === undefined ? f : `${f} (did you mean ${near}?)`
    })
    out.push({
      code: 'UNKNOWN_ARGUMENT',
      ...(site === undefined ? {} : { line: site.line }),
      message: `${site === undefined ? '' : `line ${site.line}: `}${label} has no argument ${fields.join(', ')}; the tool ignored it (its arguments: ${note.known.join(', ') || 'none'})`,
    })
  }
  return out
}

/** Whether a call site `tools.<a>.<b>` names the tool of a `server.tool` label. */
function sameTool(path: readonly string[], label: string): boolean {
  const dot = label.indexOf('.')
  const [server, tool] = path
  if (dot < 0 || server === undefined || tool === undefined) return false
  return (
    foldName(server) === foldName(label.slice(0, dot)) &&
    foldName(tool) === foldName(label.slice(dot + 1))
  )
}

function callsTool(path: readonly string[], note: CallNote): boolean {
  const [server, tool] = path
  if (server === undefined || tool === undefined) return false
  const s = note.tool.server
  return (
    (server === s || foldName(server) === foldName(s)) &&
    (tool === note.tool.name || tool === note.tool.ident)
  )
}

/** A warning about the result gets the line of the statement that returned it, when it is one. */
function withReturnLine(w: SandboxWarning, facts: CodeFacts): SandboxWarning {
  const lines = facts.finalExpression
    ? [...facts.returnLines, facts.lastStatement?.line]
    : facts.returnLines
  const only = lines.length === 1 ? lines[0] : undefined
  return only === undefined ? w : { ...w, line: only, message: `line ${only}: ${w.message}` }
}

/**
 * The error of a failed run with its fix appended, and a line where the host can name one the
 * sandbox could not (an endless loop stopped by the clock).
 */
export function explainError(error: SandboxError, ctx: MistakeContext): SandboxError {
  const facts = ctx.outcome.facts ?? NO_FACTS
  const lineText = error.line === undefined ? '' : (ctx.code.split(/\r?\n/)[error.line - 1] ?? '')
  if (error.code === 'TIMEOUT') {
    if (error.line !== undefined)
      return {
        ...error,
        message: `${error.message}; it was stopped at line ${error.line}: a loop that never ends, or one that does too much?`,
      }
    const loop = facts.endlessLoops[0]
    if (loop === undefined || facts.endlessLoops.length > 1) return error
    return {
      ...error,
      line: loop,
      message: `${error.message}; the loop at line ${loop} has no end: add a break, or a condition that becomes false`,
    }
  }
  const hint = hintFor(error, lineText, facts, ctx.visible)
  return hint === undefined ? error : { ...error, message: `${error.message}; ${hint}` }
}

function hintFor(
  error: SandboxError,
  lineText: string,
  facts: CodeFacts,
  visible: readonly VisibleTool[],
): string | undefined {
  const m = error.message
  if (error.code === 'SYNTAX_ERROR') {
    if (/\bawait\b/.test(lineText) && /=>/.test(lineText) && !/\basync\b/.test(lineText))
      return 'await is only allowed inside an async function: write async (x) => await …, and await Promise.all(…) of the results'
    return undefined
  }
  if (error.code !== 'RUNTIME_ERROR') return undefined
  const notDefined = /^ReferenceError: '([^']+)' is not defined/.exec(m)?.[1]
  if (notDefined !== undefined) return undefinedNameHint(notDefined, visible)
  if (/could not load module|import/i.test(m) && /\bimport\s*\(/.test(lineText))
    return NO_MODULES_ADVICE
  if (/^TypeError: not a function/.test(m)) {
    const site = facts.toolCalls.find((c) => c.line === error.line && c.path.length === 1)
    if (site !== undefined) return bareToolHint(site.path[0]!, visible)
    return undefined
  }
  if (
    /^TypeError: cannot read property/.test(m) &&
    /\.(?:content|structuredContent)\b/.test(lineText)
  ) {
    return 'tool results arrive unwrapped (the structuredContent, the parsed JSON of a text block, or the text itself): use the value directly, without .content[0].text'
  }
  if (/^SyntaxError/.test(m) && /\bJSON\.parse\s*\(/.test(lineText)) {
    return 'JSON.parse was given something that is not JSON text: tool results arrive already parsed, so use the value directly'
  }
  return undefined
}

/** `'X' is not defined`: a global the sandbox lacks, a server without `tools.`, a bare tool. */
function undefinedNameHint(name: string, visible: readonly VisibleTool[]): string | undefined {
  const advice = sandboxAdvice(name)
  if (advice !== undefined) return advice
  const server = visible.find((t) => t.server === name || foldName(t.server) === foldName(name))
  if (server !== undefined)
    return `did you mean ${serverPath(server.server)}? Tools are called as tools.<server>.<tool>(args)`
  const named = toolsNamed(name, visible)
  if (named.length > 0) return `did you mean ${named.slice(0, 3).map(toolPath).join(' or ')}?`
  return undefined
}

/** `tools.echo(…)`: a tool called without its server, or a server called as a function. */
function bareToolHint(name: string, visible: readonly VisibleTool[]): string {
  const outer = sandboxAdvice(name)
  if (name === 'search_tools' || name === 'execute_code') return outer!
  const named = toolsNamed(name, visible)
  const form = 'a tool is called as tools.<server>.<tool>(args)'
  if (named.length > 0)
    return `tools.${name} is not a tool: ${form}; did you mean ${named.slice(0, 3).map(toolPath).join(' or ')}?`
  const server = visible.find((t) => t.server === name || foldName(t.server) === foldName(name))
  if (server !== undefined)
    return `${serverPath(server.server)} is a server, not a tool: call one of its tools, ${serverPath(server.server)}.<tool>(args)`
  return `tools.${name} is not a tool: ${form}`
}
