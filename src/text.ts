/**
 * Text that crosses into the model, the audit log or a metric label: characters that render as
 * nothing (or reorder what is around them) are removed, and lengths are bounded in UTF-8 bytes.
 *
 * The removed set is DESIGN.md §3b's: C0 and C1 controls except tab, newline and carriage
 * return; zero-width and directional marks U+200B–U+200F; bidi embeddings and overrides
 * U+202A–U+202E; invisible operators U+2060–U+2064; bidi isolates U+2066–U+2069; the byte-order
 * mark U+FEFF; and the tag block U+E0000–U+E007F, which can spell out a hidden instruction
 * (threat IPI-04, "ASCII smuggling"). Lone surrogates are replaced by U+FFFD, so every string
 * is well-formed UTF-16 (JSON encoders and loggers disagree about them otherwise).
 *
 * @module
 */

const INVISIBLE =
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u{E0000}-\u{E007F}]/gu
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/** Removes the invisible and control characters listed above; replaces lone surrogates. */
export function stripInvisible(text: string): string {
  return text.replace(LONE_SURROGATE, '\ufffd').replace(INVISIBLE, '')
}

/** Whether `text` holds any character {@link stripInvisible} would change. */
export function hasInvisible(text: string): boolean {
  INVISIBLE.lastIndex = 0
  LONE_SURROGATE.lastIndex = 0
  const found = INVISIBLE.test(text) || LONE_SURROGATE.test(text)
  INVISIBLE.lastIndex = 0
  LONE_SURROGATE.lastIndex = 0
  return found
}

/**
 * `text` cut to at most `maxBytes` UTF-8 bytes, on a character boundary, with `…` (3 bytes)
 * counted inside the bound when it had to be cut.
 */
export function clipUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text
  const budget = Math.max(0, maxBytes - 3)
  let bytes = 0
  let end = 0
  for (const ch of text) {
    const size = Buffer.byteLength(ch)
    if (bytes + size > budget) break
    bytes += size
    end += ch.length
  }
  return `${text.slice(0, end)}…`
}

/** The longest message (error or warning) that reaches the model, in UTF-8 bytes. */
export const MAX_MESSAGE_BYTES = 2048

/** How {@link mapJson} changes a JSON value; a hook left out keeps what it would see. */
export interface JsonMapper {
  string?(value: string): string
  number?(value: number): unknown
  /** `taken` says whether a name is already in the object being rebuilt (keys mapped alike). */
  key?(key: string, taken: (name: string) => boolean): string
}

/**
 * `value` with `mapper` applied to every string, number and object key in it, at any depth;
 * the same array or object wherever nothing in it changed (a copy is made only from the first
 * change on, so a value that comes back unchanged costs no allocation). A `__proto__` key stays
 * a key, as `JSON.parse` made it (defineProperty, not assignment).
 */
export function mapJson<T>(value: T, mapper: JsonMapper): T {
  if (typeof value === 'string') return (mapper.string ? mapper.string(value) : value) as T
  if (typeof value === 'number') return (mapper.number ? mapper.number(value) : value) as T
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) {
    let out: unknown[] | undefined
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      const mapped = mapJson(item, mapper)
      if (out !== undefined) out.push(mapped)
      else if (mapped !== item) {
        out = value.slice(0, i)
        out.push(mapped)
      }
    }
    return (out ?? value) as T
  }
  const source = value as Record<string, unknown>
  const keys = Object.keys(source)
  let out: Record<string, unknown> | undefined
  let at = 0
  // The copy so far: the entries before `at`, unchanged.
  const copy = (): Record<string, unknown> => {
    if (out === undefined) {
      out = {}
      for (let j = 0; j < at; j++) setEntry(out, keys[j]!, source[keys[j]!])
    }
    return out
  }
  const taken = (name: string): boolean => Object.hasOwn(copy(), name)
  for (; at < keys.length; at++) {
    const key = keys[at]!
    const item = source[key]
    const name = mapper.key ? mapper.key(key, taken) : key
    const mapped = mapJson(item, mapper)
    if (out !== undefined || name !== key || mapped !== item) setEntry(copy(), name, mapped)
  }
  return (out ?? value) as T
}

function setEntry(into: Record<string, unknown>, name: string, item: unknown): void {
  if (name === '__proto__')
    Object.defineProperty(into, name, {
      value: item,
      enumerable: true,
      writable: true,
      configurable: true,
    })
  else into[name] = item
}

const STRIP: JsonMapper = {
  string: (text) => (hasInvisible(text) ? stripInvisible(text) : text),
  key: (key) => (hasInvisible(key) ? stripInvisible(key) : key),
}

/**
 * `value` with {@link stripInvisible} applied to every string in it, object keys included; the
 * same object when nothing needed it.
 */
export function stripInvisibleJson<T>(value: T): T {
  return mapJson(value, STRIP)
}

/** A message safe to show the model: invisible characters removed, at most 2 KiB. */
export function cleanMessage(text: string, maxBytes = MAX_MESSAGE_BYTES): string {
  return clipUtf8(stripInvisible(text), maxBytes)
}

/**
 * The known name closest to `name` by edit distance (case-insensitive), if it is close enough to
 * be a typo: for did-you-mean hints on tool names, config keys and identifiers.
 */
export function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  const limit = Math.max(2, Math.floor(name.length / 3))
  for (const candidate of known) {
    const distance = levenshtein(name.toLowerCase(), candidate.toLowerCase(), limit)
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return bestDistance <= limit ? best : undefined
}

function levenshtein(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    let rowMin = i
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost)
      cur.push(v)
      rowMin = Math.min(rowMin, v)
    }
    if (rowMin > limit) return limit + 1
    prev = cur
  }
  return prev[b.length]!
}
