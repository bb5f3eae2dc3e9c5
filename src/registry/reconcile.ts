/**
 * Drift detection: the live tools of one server against its pinned lock entry. A tool whose
 * definition changed is quarantined (TP-02, the rug pull); a tool the lock does not know is
 * exposed only when unpinned tools are allowed.
 *
 * @module
 */
import type { DefinitionHash, ToolDefinition } from '../types.js'
import { hashDefinition, pinnedDefinition } from './canonical.js'
import type { LockServerEntry } from './lock.js'

export interface ReconcileOptions {
  /** Expose tools the lock does not pin. */
  allowUnpinned: boolean
}

export interface QuarantinedTool {
  name: string
  pinnedHash: DefinitionHash
  liveHash: DefinitionHash
  /** The definition no longer matches its pin. */
  reason: 'changed'
}

export interface ReconcileResult {
  /** `pinned` when there was a lock entry; `unpinned` when there was none. */
  mode: 'pinned' | 'unpinned'
  /** Tools to offer, as their pinned projection (only the hashed fields), sorted by name. */
  exposed: Array<{ definition: ToolDefinition; hash: DefinitionHash }>
  quarantined: QuarantinedTool[]
  /** Live tools the lock does not pin (exposed only with `allowUnpinned`). */
  unpinned: Array<{ name: string; hash: DefinitionHash }>
  /** Pinned tools the server no longer lists. */
  missing: string[]
  /** Names the server lists more than once: never exposed, pinned or not (which one runs?). */
  duplicates: string[]
}

const byName = (a: { name: string }, b: { name: string }): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0

/**
 * Reconciles one server's live tools with its lock entry.
 *
 * - same hash as pinned → exposed;
 * - different hash → quarantined (`changed`), never exposed;
 * - not pinned → reported in `unpinned`, exposed only with `allowUnpinned`;
 * - pinned but not listed → `missing`;
 * - a name listed twice → `duplicates`, never exposed: which one would run is anyone's guess.
 *
 * With no entry (`undefined`) every tool is unpinned: pass `allowUnpinned: true` for the
 * "no lock at all" mode, where everything live is exposed and reported as unpinned.
 */
export function reconcile(
  entry: LockServerEntry | undefined,
  liveTools: readonly ToolDefinition[],
  options: ReconcileOptions,
): ReconcileResult {
  const result: ReconcileResult = {
    mode: entry === undefined ? 'unpinned' : 'pinned',
    exposed: [],
    quarantined: [],
    unpinned: [],
    missing: [],
    duplicates: [],
  }
  const counts = new Map<string, number>()
  for (const tool of liveTools) counts.set(tool.name, (counts.get(tool.name) ?? 0) + 1)
  const pins = new Map(Object.entries(entry?.tools ?? {}))
  const reported = new Set<string>()
  for (const tool of liveTools) {
    const liveHash = hashDefinition(tool)
    const pin = pins.get(tool.name)
    if ((counts.get(tool.name) ?? 0) > 1) {
      if (!reported.has(tool.name)) result.duplicates.push(tool.name)
      reported.add(tool.name)
      continue
    }
    if (pin === undefined) {
      result.unpinned.push({ name: tool.name, hash: liveHash })
      if (options.allowUnpinned)
        result.exposed.push({ definition: pinnedDefinition(tool), hash: liveHash })
      continue
    }
    if (pin.hash === liveHash) {
      result.exposed.push({ definition: pinnedDefinition(tool), hash: liveHash })
    } else {
      result.quarantined.push({
        name: tool.name,
        pinnedHash: pin.hash,
        liveHash,
        reason: 'changed',
      })
    }
  }
  for (const name of pins.keys()) if (!counts.has(name)) result.missing.push(name)
  result.exposed.sort((a, b) => byName(a.definition, b.definition))
  result.quarantined.sort(byName)
  result.unpinned.sort(byName)
  result.missing.sort()
  result.duplicates.sort()
  return result
}
