/**
 * The model boundary of the prompt and resource pass-through: what an upstream's prompt or
 * resource says reaches the model as directly as a direct-mode tool's answer, so it gets the
 * same guardrails as an execution's result. Every `text` field, at any depth (a prompt
 * message's text, an embedded resource's text, a resource's contents), and a prompt's
 * `description` lose invisible characters, have their PII tokenised (or redacted), and with
 * `spotlight` are fenced. URIs, names and MIME types are left alone: the client reads resources
 * back by them.
 *
 * @module
 */
import { addCounts, type PiiCounts, type PiiGuard, Spotlight } from '../guard/index.js'
import { stripInvisible } from '../text.js'

/** The guardrails in force for one prompt or resource read. */
export interface PassthroughGuard {
  pii?: PiiGuard
  spotlight: boolean
  /** The vault scope of the principal's session. */
  scope: string
  /** Labels every token made here carries: the server's. */
  labels: readonly string[]
}

/** Where a text sits: the object holding it and the key. */
type Slot = { holder: Record<string, unknown>; key: string }

function textSlots(value: unknown, slots: Slot[], depth = 0): void {
  // Upstream JSON nests a few levels (messages → content → resource); 32 is far beyond that.
  if (depth > 32 || value === null || typeof value !== 'object') return
  if (Array.isArray(value)) {
    for (const item of value) textSlots(item, slots, depth + 1)
    return
  }
  const holder = value as Record<string, unknown>
  for (const [key, item] of Object.entries(holder)) {
    if (key === 'text' && typeof item === 'string') slots.push({ holder, key })
    else textSlots(item, slots, depth + 1)
  }
}

/**
 * `result` (a copy) with its texts guarded, and the PII counted per kind. `result` itself is
 * not changed.
 */
export async function guardPassthrough<T extends object>(
  result: T,
  guard: PassthroughGuard,
): Promise<{ value: T; counts: PiiCounts }> {
  const value = structuredClone(result)
  const slots: Slot[] = []
  textSlots(value, slots)
  if (typeof (value as { description?: unknown }).description === 'string')
    slots.push({ holder: value as Record<string, unknown>, key: 'description' })
  let texts = slots.map(({ holder, key }) => stripInvisible(holder[key] as string))
  const counts: PiiCounts = {}
  if (guard.pii !== undefined && texts.length > 0) {
    const done = await guard.pii.protect(texts, guard.scope, guard.labels)
    texts = done.value
    addCounts(counts, done.counts)
  }
  if (guard.spotlight && texts.length > 0) {
    const spotlight = new Spotlight()
    texts = texts.map((text) => spotlight.fence(text))
  }
  slots.forEach(({ holder, key }, i) => {
    holder[key] = texts[i]
  })
  return { value, counts }
}
