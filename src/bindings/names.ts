/**
 * Tool and server names → JS identifiers, and the checks that keep the guest's `tools` object
 * unambiguous (TP-07): the name alphabet, collisions after sanitising, and case duplicates.
 *
 * Prototype-ish names (`__proto__`, `constructor`, `toString`…) are not rejected but suffixed
 * with `_` like reserved words: the guest keeps tools in null-prototype maps, but a suffixed
 * identifier is also safe in an object literal, in `JSON.parse` output and in any consumer that
 * forgets the null prototype. The manifest still maps the identifier to the original spelling.
 *
 * @module
 */
import type { ToolDefinition } from '../types.js'
import type { BindingProblem, BindingTool } from './model.js'

/** The alphabet a tool or server name must use to be exposed at all. */
export const TOOL_NAME_PATTERN = /^[A-Za-z0-9_.\-/]{1,128}$/

/** A safe identifier as the emitter accepts it (ASCII only: no homoglyphs reach the bindings). */
export const IDENTIFIER_PATTERN = /^[A-Za-z_$][A-Za-z0-9_$]*$/

// ES reserved words, strict-mode reserved words, and names with special meaning in scripts.
const RESERVED = new Set(
  (
    'break case catch class const continue debugger default delete do else enum export extends ' +
    'false finally for function if import in instanceof new null return super switch this throw ' +
    'true try typeof var void while with yield let static implements interface package private ' +
    'protected public await arguments eval undefined NaN Infinity async of get set'
  ).split(' '),
)

// Names an ordinary object inherits or treats specially; suffixed so no consumer trips on them.
const PROTOTYPE_NAMES = new Set(
  (
    '__proto__ constructor prototype toString toLocaleString valueOf hasOwnProperty isPrototypeOf ' +
    'propertyIsEnumerable __defineGetter__ __defineSetter__ __lookupGetter__ __lookupSetter__ then'
  ).split(' '),
)

/** Why a name is refused; the text of `INVALID_NAME` problems. */
export const INVALID_NAME_REASON = 'a name must be 1 to 128 characters of A-Z a-z 0-9 _ . - /'

/**
 * Turns a tool or server name into a JS identifier: `.`, `-` and `/` become `_`, a leading
 * digit gets a `_` prefix, reserved words and prototype names get a `_` suffix.
 * `then` is suffixed too, so no tool namespace is ever mistaken for a thenable.
 *
 * Returns undefined when the name is outside `TOOL_NAME_PATTERN`: such a tool is not exposed.
 *
 * @example sanitizeIdentifier('get-sum') // 'get_sum'
 * @example sanitizeIdentifier('__proto__') // '__proto___'
 * @example sanitizeIdentifier('a"];evil();//') // undefined
 */
export function sanitizeIdentifier(name: string): string | undefined {
  if (typeof name !== 'string' || !TOOL_NAME_PATTERN.test(name)) return undefined
  let ident = name.replace(/[.\-/]/g, '_')
  if (/^[0-9]/.test(ident)) ident = `_${ident}`
  if (RESERVED.has(ident) || PROTOTYPE_NAMES.has(ident)) ident = `${ident}_`
  return ident
}

/** True when `ident` is what the emitter may print as a bare identifier. */
export function isSafeIdentifier(ident: string): boolean {
  return IDENTIFIER_PATTERN.test(ident) && !RESERVED.has(ident) && !PROTOTYPE_NAMES.has(ident)
}

/** A tool before identifiers are assigned. */
export interface NamedTool {
  readonly server: string
  readonly name: string
  readonly definition: ToolDefinition
}

/**
 * Assigns identifiers to every tool and reports what cannot be exposed: invalid names (the tool
 * is dropped), collisions after sanitising (both tools dropped, one error naming both), and
 * names differing only by case (kept, reported as an error because TP-07 rejects them at
 * registration). Server names get the same treatment. Output is sorted by server, then name.
 */
export function assignIdentifiers(entries: readonly NamedTool[]): {
  tools: BindingTool[]
  problems: BindingProblem[]
} {
  const problems: BindingProblem[] = []
  const byServer = new Map<string, NamedTool[]>()
  for (const entry of entries) {
    const list = byServer.get(entry.server) ?? []
    list.push(entry)
    byServer.set(entry.server, list)
  }

  const serverIdents = new Map<string, string>()
  const serverNames = [...byServer.keys()].sort()
  for (const [ident, names] of groupBy(serverNames, (s) => sanitized(s, problems, s))) {
    if (ident === undefined) continue
    if (names.length > 1) {
      problems.push({
        code: 'NAME_COLLISION',
        severity: 'error',
        tool: names.join(', '),
        message: `servers ${names.map((n) => `"${n}"`).join(' and ')} all become tools.${ident}; rename one`,
      })
      continue
    }
    serverIdents.set(names[0]!, ident)
  }
  reportCaseDuplicates(
    serverNames.filter((s) => serverIdents.has(s)),
    (group) => ({
      code: 'CASE_DUPLICATE',
      severity: 'error',
      tool: group.join(', '),
      message: `servers ${group.map((n) => `"${n}"`).join(' and ')} differ only by case`,
    }),
    problems,
  )

  const tools: BindingTool[] = []
  for (const server of serverNames) {
    if (!serverIdents.has(server)) continue
    const list = [...(byServer.get(server) ?? [])].sort((a, b) => compare(a.name, b.name))
    const byIdent = groupBy(list, (t) => sanitized(t.name, problems, `${server}.${t.name}`))
    for (const [ident, group] of byIdent) {
      if (ident === undefined) continue
      const names = [...new Set(group.map((t) => t.name))]
      if (group.length > 1) {
        problems.push({
          code: 'NAME_COLLISION',
          severity: 'error',
          tool: names.map((n) => `${server}.${n}`).join(', '),
          message:
            names.length > 1
              ? `tools ${names.map((n) => `"${n}"`).join(' and ')} of server "${server}" all become tools.${serverIdents.get(server)}.${ident}; neither is exposed`
              : `server "${server}" lists tool "${names[0]}" ${group.length} times; it is not exposed`,
        })
        continue
      }
      const t = group[0]!
      tools.push({ server: t.server, name: t.name, ident, definition: t.definition })
    }
    reportCaseDuplicates(
      tools.filter((t) => t.server === server).map((t) => t.name),
      (group) => ({
        code: 'CASE_DUPLICATE',
        severity: 'error',
        tool: group.map((n) => `${server}.${n}`).join(', '),
        message: `tools ${group.map((n) => `"${n}"`).join(' and ')} of server "${server}" differ only by case`,
      }),
      problems,
    )
  }
  return { tools, problems }
}

/** Two or more distinct tool names of one server that sanitise to the same identifier. */
export interface IdentifierCollision {
  ident: string
  /** The upstream's own spellings, sorted. */
  names: string[]
}

/**
 * The identifiers that several distinct names of one server share (`get-sum` and `get_sum` are
 * both `get_sum`). Names outside the alphabet and exact duplicates are not collisions: the
 * caller reports those on their own.
 */
export function identifierCollisions(names: readonly string[]): IdentifierCollision[] {
  const byIdent = new Map<string, Set<string>>()
  for (const name of names) {
    const ident = sanitizeIdentifier(name)
    if (ident === undefined) continue
    const set = byIdent.get(ident) ?? new Set<string>()
    set.add(name)
    byIdent.set(ident, set)
  }
  return [...byIdent]
    .filter(([, set]) => set.size > 1)
    .map(([ident, set]) => ({ ident, names: [...set].sort(compare) }))
    .sort((a, b) => compare(a.ident, b.ident))
}

/** One line naming a collision and both spellings, for config errors and logs. */
export function describeCollision(server: string, collision: IdentifierCollision): string {
  const names = collision.names.map((n) => `"${printable(n)}"`).join(' and ')
  return `tools ${names} of server ${server} both become tools.${server}.${collision.ident}`
}

function sanitized(name: string, problems: BindingProblem[], label: string): string | undefined {
  const ident = sanitizeIdentifier(name)
  if (ident !== undefined) return ident
  problems.push({
    code: 'INVALID_NAME',
    severity: 'error',
    tool: printable(label),
    message: `${printable(label)} is not exposed: ${INVALID_NAME_REASON}`,
  })
  return undefined
}

function reportCaseDuplicates(
  names: readonly string[],
  make: (group: string[]) => BindingProblem,
  problems: BindingProblem[],
): void {
  for (const [, group] of groupBy(names, (n) => n.toLowerCase())) {
    const distinct = [...new Set(group)]
    if (distinct.length > 1) problems.push(make(distinct))
  }
}

function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>()
  for (const item of items) {
    const k = key(item)
    const list = out.get(k) ?? []
    list.push(item)
    out.set(k, list)
  }
  return out
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** A rejected name is untrusted text: show it JSON-quoted and cut, so it cannot forge log lines. */
export function printable(name: string): string {
  const text = String(name)
  if (/^[A-Za-z0-9_.\-/, ]{0,300}$/.test(text)) return text
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)
}
