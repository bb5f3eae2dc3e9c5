/**
 * Canonical JSON (RFC 8785 style) and the definition hash that pins a tool. Two definitions that
 * mean the same JSON hash the same, whatever their key order or number spelling.
 *
 * @module
 */
import { canonicalJson, MAX_CANONICAL_DEPTH, sha256Tagged } from '../canonical-json.js'
import type { DefinitionHash, ToolDefinition } from '../types.js'

export { canonicalJson, MAX_CANONICAL_DEPTH }

/** The fields of a definition that the model or policy sees, hence the fields that are pinned. */
export const PINNED_FIELDS = [
  'name',
  'title',
  'description',
  'inputSchema',
  'outputSchema',
  'annotations',
] as const

/** The pinned projection of a definition: only the fields in `PINNED_FIELDS`, absent ones left out. */
export function pinnedDefinition(definition: ToolDefinition): ToolDefinition {
  const picked: Record<string, unknown> = {}
  for (const field of PINNED_FIELDS) {
    if (definition[field] !== undefined) picked[field] = definition[field]
  }
  return picked as ToolDefinition
}

/**
 * `sha256:<hex>` over the canonical JSON of the pinned fields (`name`, `title`, `description`,
 * `inputSchema`, `outputSchema`, `annotations`). Any other field (`_meta`, `icons`, …) does not
 * change the hash, and is not exposed by `reconcile` either.
 */
export function hashDefinition(definition: ToolDefinition): DefinitionHash {
  return sha256Tagged(canonicalJson(pinnedDefinition(definition))) as DefinitionHash
}
