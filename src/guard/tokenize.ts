/**
 * PII tokenisation over JSON values: every detected value in a string (and every number that is
 * a payment card) becomes its token from the vault, `[EMAIL_1]`, or in `redact` mode `[EMAIL]`.
 * The reverse, for the arguments of a `resolveFor` tool: tokens of the caller's own scope become
 * their values again, and bring the labels of the calls that produced them.
 *
 * @module
 */
import type { Guardrails, PiiKind } from '../config/index.js'
import { PII_KINDS } from '../config/index.js'
import { mapJson, stripInvisibleJson } from '../text.js'
import type { Json } from '../types.js'
import { detectMasked, detectVisible } from './detect.js'
import type { Detection } from './kinds.js'
import { KIND_BIT, type KindMask, kindMask } from './shape.js'
import { ByKind, type Vault, type VaultItem } from './vault.js'

/** Detections per kind; only kinds that were seen are present. */
export type PiiCounts = Partial<Record<PiiKind, number>>

/** The kinds counted, with their counts. */
export function countEntries(counts: PiiCounts): Array<[PiiKind, number]> {
  return Object.entries(counts) as Array<[PiiKind, number]>
}

/** Adds `more` into `into`. */
export function addCounts(into: PiiCounts, more: PiiCounts): void {
  for (const [kind, n] of countEntries(more)) into[kind] = (into[kind] ?? 0) + n
}

export type PiiOptions = NonNullable<Guardrails['pii']>

/** A value with its detections replaced, and how many of each kind there were. */
export interface Protected<T> {
  value: T
  counts: PiiCounts
}

/** Arguments with the caller's tokens turned back into values. */
export interface Resolved {
  args: Record<string, unknown>
  /** Tokens replaced, per kind. */
  counts: PiiCounts
  /** The labels the resolved values carry (deduplicated, in first-seen order). */
  labels: string[]
}

const TOKEN_KINDS = PII_KINDS.map((k) => k.toUpperCase()).join('|')
/** A token as {@link tokenFor} spells it; numbers start at 1 and stay below 10^9. */
const TOKEN = new RegExp(`\\[(?:${TOKEN_KINDS})_[1-9][0-9]{0,8}\\]`, 'g')
/** Digits a card number can have, as a JSON number (no grouping there). */
const CARD_NUMBER = /^[0-9]{13,19}$/

/** A string or number met in the walk, with what was found in it. */
interface Site {
  text: string
  found: Detection[]
  /** Per detection, its index in the items sent to the vault. */
  items: number[]
}

export class PiiGuard {
  readonly options: PiiOptions
  readonly #kinds: KindMask
  readonly #vault: Vault | undefined
  /** `server` → every tool (`*`) or the set of names whose arguments are resolved. */
  readonly #resolveFor = new Map<string, '*' | Set<string>>()

  constructor(options: PiiOptions, vault?: Vault) {
    if (options.mode === 'tokenize' && vault === undefined)
      throw new TypeError('PiiGuard: tokenize mode needs a vault')
    this.options = options
    this.#kinds = kindMask(options.detect)
    this.#vault = vault
    for (const entry of options.resolveFor) {
      const dot = entry.indexOf('.')
      const server = entry.slice(0, dot)
      const tool = entry.slice(dot + 1)
      const known = this.#resolveFor.get(server)
      if (tool === '*' || known === '*') this.#resolveFor.set(server, '*')
      else if (known === undefined) this.#resolveFor.set(server, new Set([tool]))
      else known.add(tool)
    }
  }

  /** Whether this guard changes anything (`mode: off` does not). */
  get active(): boolean {
    return this.options.mode !== 'off'
  }

  /** Whether tokens in arguments to this tool (its name or identifier) resolve. */
  resolves(server: string, ...names: string[]): boolean {
    const tools = this.#resolveFor.get(server)
    if (tools === undefined) return false
    return tools === '*' || names.some((n) => tools.has(n))
  }

  /**
   * `value` with every detection replaced in place: by its token in `scope` (labels join the
   * value's) or, in redact mode or when the vault is full, by `[KIND]`.
   */
  async protect<T extends Json | undefined>(
    value: T,
    scope: string,
    labels: readonly string[],
  ): Promise<Protected<T>> {
    return this.#protect(value, scope, labels, false)
  }

  /**
   * {@link protect} of `stripInvisibleJson(value)` (src/text.ts), as the model boundary needs it:
   * invisible characters go first, so none can split a value from the detector. One walk does
   * both when nothing needs stripping (the common case); otherwise the value is stripped, then
   * protected. Strips even when this guard is off.
   */
  async protectStripped<T extends Json | undefined>(
    value: T,
    scope: string,
    labels: readonly string[],
  ): Promise<Protected<T>> {
    if (!this.active || value === undefined) return { value: stripInvisibleJson(value), counts: {} }
    return this.#protect(value, scope, labels, true)
  }

  async #protect<T extends Json | undefined>(
    value: T,
    scope: string,
    labels: readonly string[],
    strip: boolean,
  ): Promise<Protected<T>> {
    const counts: PiiCounts = {}
    if (!this.active || value === undefined) return { value, counts }
    const sites: Site[] = []
    // Pass 1: find every detection, once per distinct string (records repeat their keys and
    // many of their values). With `strip`, a string that holds an invisible character stops it:
    // the value is stripped and protected again.
    const seen = new Set<string>()
    const kinds = this.#kinds
    let invisible = false
    const visit = (text: string): void => {
      // One hash lookup, not two: whether `add` grew the set says whether the text is new.
      const before = seen.size
      if (seen.add(text).size === before || invisible) return
      const found = strip ? detectVisible(text, kinds) : detectMasked(text, kinds)
      if (found === undefined) invisible = true
      else if (found.length > 0) sites.push({ text, found, items: [] })
    }
    walk(value, visit, (kinds & KIND_BIT.card) !== 0)
    if (invisible) return this.#protect(stripInvisibleJson(value), scope, labels, false)
    if (sites.length === 0) return { value, counts }
    // Pass 2: one vault round trip for every distinct value.
    const items: VaultItem[] = []
    const itemIndex = new ByKind<number>()
    for (const site of sites) {
      for (const d of site.found) {
        const found = site.text.slice(d.start, d.end)
        let index = itemIndex.get(d.kind, found)
        if (index === undefined) {
          index = items.push({ kind: d.kind, value: found }) - 1
          itemIndex.set(d.kind, found, index)
        }
        site.items.push(index)
      }
    }
    const tokens =
      this.options.mode === 'tokenize'
        ? await this.#vault!.tokenize(scope, items, labels)
        : items.map(() => undefined)
    const replaced = new Map<string, string>()
    for (const site of sites) {
      let out = ''
      let at = 0
      site.found.forEach((d, i) => {
        const token = tokens[site.items[i]!] ?? `[${d.kind.toUpperCase()}]`
        out += site.text.slice(at, d.start) + token
        at = d.end
        counts[d.kind] = (counts[d.kind] ?? 0) + 1
      })
      replaced.set(site.text, out + site.text.slice(at))
    }
    return { value: rebuild(value, replaced) as T, counts }
  }

  /** One text (a log line, an error message) protected like a string inside a value. */
  async protectText(
    text: string,
    scope: string,
    labels: readonly string[],
  ): Promise<Protected<string>> {
    return this.protect(text, scope, labels)
  }

  /**
   * `args` with every token of `scope` replaced by its value; unknown or expired tokens, and
   * tokens of another scope, stay literal text.
   */
  async resolveArgs(args: Record<string, unknown>, scope: string): Promise<Resolved> {
    const counts: PiiCounts = {}
    const labels: string[] = []
    if (this.options.mode !== 'tokenize') return { args, counts, labels }
    const seen = new Set<string>()
    walk(args as Json, (text) => {
      for (const m of text.matchAll(TOKEN)) seen.add(m[0])
    })
    if (seen.size === 0) return { args, counts, labels }
    const tokens = [...seen]
    const entries = await this.#vault!.resolve(scope, tokens)
    const values = new Map<string, string>()
    const labelSet = new Set<string>()
    tokens.forEach((token, i) => {
      const entry = entries[i]
      if (entry === undefined) return
      values.set(token, entry.value)
      for (const label of entry.labels) {
        if (!labelSet.has(label)) {
          labelSet.add(label)
          labels.push(label)
        }
      }
    })
    if (values.size === 0) return { args, counts, labels }
    const replaced = new Map<string, string>()
    walk(args as Json, (text) => {
      if (replaced.has(text)) return
      const out = text.replace(TOKEN, (token) => {
        const value = values.get(token)
        if (value === undefined) return token
        const kind = token.slice(1, token.lastIndexOf('_')).toLowerCase() as PiiKind
        counts[kind] = (counts[kind] ?? 0) + 1
        return value
      })
      if (out !== text) replaced.set(text, out)
    })
    return { args: rebuild(args as Json, replaced) as Record<string, unknown>, counts, labels }
  }
}

/**
 * Calls `visit` with every string in `value`: values and object keys; with `cards`, also the
 * digits of integers that could be card numbers.
 */
function walk(value: Json, visit: (text: string) => void, cards = false): void {
  if (typeof value === 'string') visit(value)
  else if (typeof value === 'number') {
    if (cards) {
      const digits = numberDigits(value)
      if (digits !== undefined) visit(digits)
    }
  } else if (Array.isArray(value)) {
    for (const item of value) walk(item, visit, cards)
  } else if (value !== null && typeof value === 'object') {
    // Keys, not entries: no pair array per property.
    const record = value as Record<string, Json>
    for (const key of Object.keys(record)) {
      visit(key)
      walk(record[key]!, visit, cards)
    }
  }
}

/** The decimal digits of an integer long enough to be a card number. */
function numberDigits(value: number): string | undefined {
  if (!Number.isInteger(value) || value < 1e12) return undefined
  // Past 2^53 a JSON number has lost its last digits already: it is not a card any more.
  if (!Number.isSafeInteger(value)) return undefined
  const digits = String(value)
  return CARD_NUMBER.test(digits) ? digits : undefined
}

/** `value` with each string (and card-like number) in `replaced` swapped for its new text. */
function rebuild(value: Json, replaced: ReadonlyMap<string, string>): Json {
  return mapJson(value, {
    string: (text) => replaced.get(text) ?? text,
    number: (n) => {
      const digits = numberDigits(n)
      return digits === undefined ? n : (replaced.get(digits) ?? n)
    },
    key: (key, taken) => {
      const token = replaced.get(key)
      if (token === undefined) return key
      // Two keys redacted alike (`[EMAIL]`) must not overwrite each other.
      let name = token
      for (let n = 2; taken(name); n++) name = `${token}#${n}`
      return name
    },
  })
}
