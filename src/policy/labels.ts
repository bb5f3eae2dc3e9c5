/**
 * What a rule says about data labels: whether it reads `tool.labels` or `execution.labels`, and
 * which label strings it compares them with. The loader checks those strings against the labels
 * the config declares (a misspelt label would make a deny rule match nothing), and a denial
 * names the labels that made the rule match.
 *
 * Recognised forms, for either list `L`: `"x" in L`, `L == ["x", …]`, a macro over `L` whose
 * variable is compared with a string (`L.exists(l, l == "x")`, `l in ["x", "y"]`), and a macro
 * over a list of strings whose variable is looked up in `L` (`["x", "y"].exists(l, l in L)`).
 * Anything else that reads `L` still counts as a reference, with no literals.
 *
 * @module
 */
import type { ASTNode } from '@marcbachmann/cel-js'

export type LabelList = 'tool' | 'execution'

/** One label string a rule compares a label list with, and where it is in the `when` text. */
export interface LabelLiteral {
  readonly label: string
  readonly list: LabelList
  /** Offset of the string literal inside the expression. */
  readonly offset: number
}

export interface LabelUse {
  /** The lists the rule reads. */
  readonly lists: ReadonlySet<LabelList>
  readonly literals: readonly LabelLiteral[]
}

/** Macros whose first argument names a variable bound to each element of the receiver. */
const MACROS: ReadonlySet<string> = new Set(['all', 'exists', 'exists_one', 'filter', 'map'])

interface Node {
  op: string
  args: unknown
  start?: number
}

/** What a macro variable stands for: an element of a label list, or one of some strings. */
type Binding = { list: LabelList } | { strings: Array<{ value: string; offset: number }> }

function isNode(value: unknown): value is Node {
  return value !== null && typeof value === 'object' && 'op' in value
}

function args(node: Node): unknown[] {
  return Array.isArray(node.args) ? node.args : [node.args]
}

/** `tool.labels` or `execution.labels`, else undefined. */
function labelList(node: unknown): LabelList | undefined {
  if (!isNode(node) || node.op !== '.') return undefined
  const [target, field] = args(node)
  if (field !== 'labels' || !isNode(target) || target.op !== 'id') return undefined
  return target.args === 'tool' || target.args === 'execution' ? target.args : undefined
}

function stringValue(node: unknown): { value: string; offset: number } | undefined {
  if (!isNode(node) || node.op !== 'value' || typeof node.args !== 'string') return undefined
  return { value: node.args, offset: node.start ?? 0 }
}

/** The strings of a list literal (`["a", "b"]`), ignoring anything that is not a string. */
function stringList(node: unknown): Array<{ value: string; offset: number }> | undefined {
  if (!isNode(node) || node.op !== 'list') return undefined
  return args(node).flatMap((item) => {
    const s = stringValue(item)
    return s === undefined ? [] : [s]
  })
}

/** Reads one parsed `when`. */
export function labelUse(ast: ASTNode): LabelUse {
  const lists = new Set<LabelList>()
  const literals: LabelLiteral[] = []
  const add = (list: LabelList, items: ReadonlyArray<{ value: string; offset: number }>) => {
    for (const { value, offset } of items) literals.push({ label: value, list, offset })
  }
  const bound = (node: unknown, scope: ReadonlyMap<string, Binding>): Binding | undefined =>
    isNode(node) && node.op === 'id' && typeof node.args === 'string'
      ? scope.get(node.args)
      : undefined

  const visit = (value: unknown, scope: ReadonlyMap<string, Binding>): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item, scope)
      return
    }
    if (!isNode(value)) return
    const list = labelList(value)
    if (list !== undefined) {
      lists.add(list)
      return
    }
    if (value.op === 'id' || value.op === 'value') return
    const [left, right] = args(value)
    if (value.op === 'in') {
      const into = labelList(right)
      const literal = stringValue(left)
      const binding = bound(left, scope)
      if (into !== undefined && literal !== undefined) add(into, [literal])
      if (into !== undefined && binding !== undefined && 'strings' in binding)
        add(into, binding.strings)
      const strings = stringList(right)
      if (binding !== undefined && 'list' in binding && strings !== undefined)
        add(binding.list, strings)
    }
    if (value.op === '==' || value.op === '!=') {
      for (const [a, b] of [
        [left, right],
        [right, left],
      ] as const) {
        const of = labelList(a)
        const strings = stringList(b)
        if (of !== undefined && strings !== undefined) add(of, strings)
        const binding = bound(a, scope)
        const literal = stringValue(b)
        if (binding !== undefined && 'list' in binding && literal !== undefined)
          add(binding.list, [literal])
      }
    }
    if (value.op === 'rcall') {
      const [name, receiver, macroArgs] = args(value)
      if (typeof name === 'string' && MACROS.has(name) && Array.isArray(macroArgs)) {
        const [variable, ...body] = macroArgs as unknown[]
        visit(receiver, scope)
        const of = labelList(receiver)
        const strings = stringList(receiver)
        const binding: Binding | undefined =
          of !== undefined ? { list: of } : strings !== undefined ? { strings } : undefined
        if (isNode(variable) && variable.op === 'id' && typeof variable.args === 'string') {
          const inner = new Map(scope)
          if (binding === undefined) inner.delete(variable.args)
          else inner.set(variable.args, binding)
          visit(body, inner)
          return
        }
      }
    }
    visit(value.args, scope)
  }
  visit(ast, new Map())
  return { lists, literals }
}
