/**
 * Tool names the config spells out, checked against what the catalogue knows of each server:
 * `servers.<name>.tools` keys (labels) and `guardrails.pii.resolveFor` entries. A misspelt name
 * would otherwise configure nothing, silently.
 *
 * @module
 */
import { describeCollision, sanitizeIdentifier } from '../bindings/index.js'
import type { Config } from '../config/index.js'
import type { LockFile } from '../registry/index.js'
import type { Catalog, ServerState } from './catalog.js'
import { closestTool, listed, type VisibleTool } from './suggest.js'

/**
 * Everything a server is known to have, exposed or not: a quarantined or unpinned tool still
 * exists, and what the config says of it applies once it is approved.
 */
function knownTools(server: string, state: ServerState, lock: LockFile | undefined): VisibleTool[] {
  const names = new Set<string>([
    ...state.tools.map((t) => t.name),
    ...state.quarantined.map((q) => q.name),
    ...state.unpinned,
    ...Object.keys(lock?.servers[server]?.tools ?? {}),
  ])
  return [...names].map((name) => ({ server, name, ident: sanitizeIdentifier(name) ?? name }))
}

/**
 * Two tools of one server that sanitise to one identifier: `tools.s.get_sum` must mean one
 * tool, and sluice cannot tell which.
 */
export function collisionProblems(catalog: Catalog): string[] {
  return [...catalog.servers()].flatMap(([server, state]) =>
    state.collisions.map(
      (collision) =>
        `servers.${server}: ${describeCollision(server, collision)}; sluice cannot tell which one tools.${server}.${collision.ident} means (rename one upstream, or remove the server)`,
    ),
  )
}

/**
 * `servers.<name>.tools.<tool>` keys that name no tool of their server, once the catalogue
 * knows the server's tools (listed live, or pinned in the lock), each with a did-you-mean. A
 * key for a tool that does not exist would label nothing, silently. `servers` limits the check
 * to those servers (a server listed after the start).
 */
export function toolKeyProblems(
  config: Pick<Config, 'servers'>,
  catalog: Catalog,
  lock: LockFile | undefined,
  servers?: readonly string[],
): { problems: string[]; unchecked: string[] } {
  const problems: string[] = []
  const unchecked: string[] = []
  const states = catalog.servers()
  for (const [server, entry] of Object.entries(config.servers)) {
    if (servers !== undefined && !servers.includes(server)) continue
    const keys = Object.keys(entry.tools ?? {})
    if (keys.length === 0) continue
    const state = states.get(server)
    if (state === undefined || state.source === 'none') {
      unchecked.push(server)
      continue
    }
    const known = knownTools(server, state, lock)
    const names = new Set(known.map((t) => t.name))
    for (const key of keys) {
      if (names.has(key)) continue
      const guess = closestTool(key, known)
      const hint =
        guess !== undefined
          ? ` (did you mean "${guess.name}"?)`
          : known.length === 0
            ? `; it lists no tools`
            : `; its tools: ${listed(known.map((t) => t.name).sort())}`
      problems.push(`servers.${server}.tools.${key}: server ${server} has no tool "${key}"${hint}`)
    }
  }
  return { problems, unchecked }
}

/**
 * `guardrails.pii.resolveFor` entries whose tool part names no tool of its server (by its name
 * or its identifier), for servers the catalogue knows; `server.*` always holds.
 */
export function resolveForProblems(
  config: Pick<Config, 'guardrails'>,
  catalog: Catalog,
  lock: LockFile | undefined,
): string[] {
  const states = catalog.servers()
  return (config.guardrails.pii?.resolveFor ?? []).flatMap((entry, i) => {
    const dot = entry.indexOf('.')
    const server = entry.slice(0, dot)
    const tool = entry.slice(dot + 1)
    const state = states.get(server)
    if (tool === '*' || state === undefined || state.source === 'none') return []
    const known = knownTools(server, state, lock)
    if (known.some((t) => t.name === tool || t.ident === tool)) return []
    const guess = closestTool(tool, known)
    return [
      `guardrails.pii.resolveFor[${i}]: server ${server} has no tool "${tool}"${guess === undefined ? '' : ` (did you mean "${server}.${guess.name}"?)`}`,
    ]
  })
}
