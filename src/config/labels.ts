/**
 * The data labels a config declares (`servers.<name>.labels`, `servers.<name>.tools.<tool>.labels`)
 * and the labels of one tool as policy sees them (`tool.labels`).
 *
 * @module
 */
import type { Config } from './load.js'

/** Every label the config declares anywhere, sorted. */
export function declaredLabels(config: Pick<Config, 'servers'>): string[] {
  const all = new Set<string>()
  for (const server of Object.values(config.servers)) {
    for (const label of server.labels ?? []) all.add(label)
    for (const tool of Object.values(server.tools ?? {}))
      for (const label of tool.labels ?? []) all.add(label)
  }
  return [...all].sort()
}

/**
 * The labels of one tool: its own plus its server's, without repeats, sorted (so a rule or an
 * audit reader sees the same list however the config spells it). Empty for an unknown server.
 */
export function toolLabels(
  config: Pick<Config, 'servers'>,
  server: string,
  tool: string,
): readonly string[] {
  const entry = config.servers[server]
  if (entry === undefined) return EMPTY
  // Own property only: a tool named `constructor` or `__proto__` is a name, not a prototype key.
  const own =
    entry.tools !== undefined && Object.hasOwn(entry.tools, tool)
      ? (entry.tools[tool]?.labels ?? EMPTY)
      : EMPTY
  const ofServer = entry.labels ?? EMPTY
  if (own.length === 0 && ofServer.length === 0) return EMPTY
  return Object.freeze([...new Set([...ofServer, ...own])].sort())
}

const EMPTY: readonly string[] = Object.freeze([])
