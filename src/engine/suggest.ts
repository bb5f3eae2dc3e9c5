/**
 * "Did you mean" for tool and server names, among the tools **this caller can see** only: a name
 * policy hides from the caller is never suggested, so a guess cannot be confirmed this way.
 *
 * Models mix the spellings of one name (`get-sum`, `get_sum`, `getSum`, `GetSum`), so names are
 * compared with case and separators removed first, then by edit distance.
 *
 * @module
 */
import { sanitizeIdentifier } from '../bindings/index.js'
import { nearest } from '../text.js'

/** A tool as the caller sees it: its server's config key, the upstream name, the identifier. */
export interface VisibleTool {
  readonly server: string
  readonly name: string
  readonly ident: string
}

/** Names listed in a message at most, so that it stays short. */
const MAX_LISTED = 12

/** The gateway's own tools: a model that calls one from inside code needs another answer. */
const OUTER_TOOLS: ReadonlySet<string> = new Set(['search_tools', 'execute_code'])

/** `getSum`, `get-sum`, `GET_SUM` → `getsum`. */
export function foldName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '')
}

/** How the caller writes a server in code: `tools.my_db` for the server `my-db`. */
export function serverPath(server: string): string {
  const ident = sanitizeIdentifier(server)
  return ident === undefined ? `tools[${JSON.stringify(server)}]` : `tools.${ident}`
}

/** How the caller writes a tool in code: `tools.store.get_sum`. */
export function toolPath(tool: VisibleTool): string {
  return `${serverPath(tool.server)}.${tool.ident}`
}

/** The closest tool among `tools` to `name`: same folded spelling first, then edit distance. */
export function closestTool(name: string, tools: readonly VisibleTool[]): VisibleTool | undefined {
  const folded = foldName(name)
  const same = tools.find((t) => foldName(t.name) === folded || foldName(t.ident) === folded)
  if (same !== undefined) return same
  const best = nearest(
    folded,
    tools.map((t) => foldName(t.name)),
  )
  return best === undefined ? undefined : tools.find((t) => foldName(t.name) === best)
}

/** Names for a message: the first dozen, then how many there are in all. */
export function listed(names: readonly string[]): string {
  const shown = names.slice(0, MAX_LISTED).join(', ')
  return names.length > MAX_LISTED ? `${shown}, … (${names.length} in all)` : shown
}

/**
 * The message for `tools.<server>.<name>` that matches no tool: what was asked, then the
 * closest visible tool or, failing that, what there is.
 */
export function unknownToolMessage(
  server: string,
  name: string,
  visible: readonly VisibleTool[],
): string {
  const asked = `${serverPath(server)}.${sanitizeIdentifier(name) === name ? name : `[${JSON.stringify(name)}]`}`
  if (OUTER_TOOLS.has(name)) {
    return `${asked} does not exist: ${name} is a tool of the gateway next to execute_code, not callable from code; call it on its own, or read the declarations in the execute_code description`
  }
  const ofServer = visible.filter((t) => t.server === server)
  if (ofServer.length > 0) {
    const best = closestTool(name, ofServer)
    if (best !== undefined) return `${asked} does not exist; did you mean ${toolPath(best)}?`
    return `${asked} does not exist; ${serverPath(server)} has: ${listed(ofServer.map((t) => t.ident))}`
  }
  if (visible.length === 0) return `${asked} does not exist; this caller can call no tools`
  const servers = [...new Set(visible.map((t) => t.server))]
  const folded = foldName(server)
  const nearServer =
    servers.find((s) => foldName(s) === folded) ??
    nearest(
      folded,
      servers.map((s) => foldName(s)),
    )
  const serverGuess = servers.find((s) => foldName(s) === nearServer)
  const onGuess =
    serverGuess === undefined
      ? undefined
      : closestTool(
          name,
          visible.filter((t) => t.server === serverGuess),
        )
  const exactElsewhere = visible.find((t) => foldName(t.name) === foldName(name))
  const best = onGuess ?? exactElsewhere
  const noServer = `${asked} does not exist: this caller has no server ${JSON.stringify(server)}`
  if (best !== undefined) return `${noServer}; did you mean ${toolPath(best)}?`
  if (serverGuess !== undefined) return `${noServer}; did you mean ${serverPath(serverGuess)}?`
  return `${noServer}; its servers: ${listed(servers.map(serverPath))}`
}

/** Visible tools named like `name` on any server (for `tools.echo(…)` with no server). */
export function toolsNamed(name: string, visible: readonly VisibleTool[]): VisibleTool[] {
  const folded = foldName(name)
  return visible.filter((t) => foldName(t.name) === folded || foldName(t.ident) === folded)
}
