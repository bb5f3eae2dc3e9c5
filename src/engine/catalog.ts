/**
 * The live tool catalogue: what each upstream lists, reconciled with the pinned lock. A changed
 * tool is quarantined, an unpinned tool is exposed only when allowed, and every exposed tool has
 * a hash and a sanitised identifier. Refreshed at start and on `tools/list_changed`.
 *
 * @module
 */
import {
  describeCollision,
  identifierCollisions,
  sanitizeIdentifier,
  type IdentifierCollision,
} from '../bindings/index.js'
import { isSecretHeader, type Config } from '../config/index.js'
import {
  hashDefinition,
  lockSourceOf,
  reconcile,
  secretsOf,
  toolRisk,
  type LockFile,
  type ServerFacts,
} from '../registry/index.js'
import type { CatalogTool, DefinitionHash, Risk, ToolDefinition } from '../types.js'
import type { UpstreamSet } from '../upstream/index.js'

/** How often a server that is not listed live yet is tried again. */
export const STALE_RETRY_MS = 2_000
/** Longest wait for one `tools/list`. */
export const LIST_TIMEOUT_MS = 10_000

/** A tool held back because its live definition no longer matches its pin. */
export interface QuarantinedTool {
  server: string
  name: string
  pinnedHash: string
  liveHash: string
}

/** What the catalogue knows about one server. */
export interface ServerState {
  /** `live`: listed from the server; `lock`: from the pins only (server not reachable yet). */
  source: 'live' | 'lock' | 'none'
  tools: CatalogTool[]
  quarantined: QuarantinedTool[]
  unpinned: string[]
  problems: string[]
  /**
   * Distinct tool names that sanitise to one identifier. Neither tool is exposed; at start and
   * on reload the engine refuses the config (it cannot tell which one the model meant).
   */
  collisions: IdentifierCollision[]
  lastError?: string
}

export type CatalogEvent =
  | { type: 'quarantined'; server: string; tool: string; pinnedHash: string; liveHash: string }
  | { type: 'unpinned'; server: string; tool: string; hash: string; exposed: boolean }
  | { type: 'refresh-failed'; server: string; message: string }
  /** The server answered `tools/list` (at start, on `list_changed`, or after being down). */
  | { type: 'listed'; server: string }
  | { type: 'collision'; server: string; message: string }

export interface CatalogOptions {
  config: Config
  upstreams: UpstreamSet
  lock?: LockFile
  onEvent?: (event: CatalogEvent) => void
}

/** Result of looking a tool up for a call. */
export type Lookup =
  | { kind: 'tool'; tool: CatalogTool }
  | { kind: 'quarantined'; info: QuarantinedTool }
  | { kind: 'unknown' }

export class Catalog {
  readonly #options: CatalogOptions
  readonly #servers = new Map<string, ServerState>()
  readonly #lastAttempt = new Map<string, number>()
  readonly #inFlight = new Map<string, Promise<void>>()
  #version = 0

  constructor(options: CatalogOptions) {
    this.#options = options
    for (const name of Object.keys(options.config.servers)) {
      this.#servers.set(name, this.#fromLock(name))
    }
  }

  /** Increments on every change; caches keyed by it stay correct. */
  get version(): number {
    return this.#version
  }

  /** Lists one server (or all) and reconciles with the lock. Never throws: failures are recorded. */
  async refresh(server?: string): Promise<void> {
    const names = server === undefined ? [...this.#servers.keys()] : [server]
    await Promise.all(names.map((name) => this.#refreshOnce(name)))
  }

  /**
   * Re-lists servers that have not been listed live yet (down at start, or slow to start), at
   * most once per `minIntervalMs` each. A server that answers later then joins the catalogue
   * without a restart.
   */
  refreshStale(minIntervalMs = STALE_RETRY_MS): Promise<void> {
    const now = Date.now()
    const stale = [...this.#servers]
      .filter(
        ([name, state]) =>
          state.source !== 'live' && now - (this.#lastAttempt.get(name) ?? 0) >= minIntervalMs,
      )
      .map(([name]) => this.#refreshOnce(name))
    return Promise.all(stale).then(() => undefined)
  }

  /** One listing per server at a time; concurrent callers share it. */
  #refreshOnce(name: string): Promise<void> {
    let pending = this.#inFlight.get(name)
    if (!pending) {
      this.#lastAttempt.set(name, Date.now())
      pending = this.#refreshOne(name).finally(() => this.#inFlight.delete(name))
      this.#inFlight.set(name, pending)
    }
    return pending
  }

  async #refreshOne(name: string): Promise<void> {
    const upstream = this.#options.upstreams.get(name)
    if (!upstream) return
    let live: ToolDefinition[]
    try {
      live = await upstream.listTools({ timeoutMs: LIST_TIMEOUT_MS })
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : String(cause)
      const previous = this.#servers.get(name) ?? this.#fromLock(name)
      this.#servers.set(name, { ...previous, lastError: message })
      this.#options.onEvent?.({ type: 'refresh-failed', server: name, message })
      return
    }
    this.#servers.set(name, this.#reconcile(name, live))
    this.#version++
    this.#options.onEvent?.({ type: 'listed', server: name })
  }

  #allowUnpinned(name: string): boolean {
    const server = this.#options.config.servers[name]
    return server?.allowUnpinned ?? this.#options.config.lock?.allowUnpinned ?? false
  }

  #reconcile(name: string, live: ToolDefinition[]): ServerState {
    const lock = this.#options.lock
    const state: ServerState = {
      source: 'live',
      tools: [],
      quarantined: [],
      unpinned: [],
      problems: [],
      collisions: [],
    }
    const entry = lock?.servers[name]
    const outcome = lock
      ? reconcile(entry, live, { allowUnpinned: this.#allowUnpinned(name) })
      : {
          exposed: live.map((d) => ({ definition: d, hash: hashDefinition(d) })),
          quarantined: [],
          unpinned: [],
          missing: [],
        }
    for (const q of outcome.quarantined) {
      const info = { server: name, name: q.name, pinnedHash: q.pinnedHash, liveHash: q.liveHash }
      state.quarantined.push(info)
      this.#options.onEvent?.({
        type: 'quarantined',
        server: name,
        tool: q.name,
        pinnedHash: q.pinnedHash,
        liveHash: q.liveHash,
      })
    }
    for (const u of outcome.unpinned) {
      state.unpinned.push(u.name)
      if (lock) {
        this.#options.onEvent?.({
          type: 'unpinned',
          server: name,
          tool: u.name,
          hash: u.hash,
          exposed: this.#allowUnpinned(name),
        })
      }
    }
    state.tools = this.#toCatalogTools(name, outcome.exposed, state)
    for (const collision of state.collisions) {
      this.#options.onEvent?.({
        type: 'collision',
        server: name,
        message: `${describeCollision(name, collision)}; neither is exposed`,
      })
    }
    return state
  }

  #fromLock(name: string): ServerState {
    const entry = this.#options.lock?.servers[name]
    const state: ServerState = {
      source: entry ? 'lock' : 'none',
      tools: [],
      quarantined: [],
      unpinned: [],
      problems: [],
      collisions: [],
    }
    if (!entry) return state
    const exposed = Object.values(entry.tools).map((t) => ({
      definition: t.definition,
      hash: t.hash,
    }))
    state.tools = this.#toCatalogTools(name, exposed, state)
    return state
  }

  #toCatalogTools(
    server: string,
    exposed: ReadonlyArray<{ definition: ToolDefinition; hash: string }>,
    state: Pick<ServerState, 'problems' | 'collisions'>,
  ): CatalogTool[] {
    const pins = this.#options.lock?.servers[server]?.tools
    let facts: ServerFacts | undefined
    // The signed lock's score when the tool is pinned as it is; else one scored here, unsigned.
    const riskOf = (definition: ToolDefinition, hash: string): Risk | undefined => {
      const pin = pins?.[definition.name]
      if (pin?.hash === hash && pin.risk !== undefined) return pin.risk
      const config = this.#options.config.servers[server]
      if (config === undefined) return undefined
      facts ??= {
        source: lockSourceOf(config),
        secrets: secretsOf(config, isSecretHeader),
        signed: false,
      }
      return toolRisk(definition, facts)
    }
    const collisions = identifierCollisions(exposed.map((e) => e.definition.name))
    state.collisions.push(...collisions)
    const colliding = new Set(collisions.flatMap((c) => c.names))
    const tools: CatalogTool[] = []
    for (const { definition, hash } of exposed) {
      const ident = sanitizeIdentifier(definition.name)
      if (ident === undefined) {
        state.problems.push(
          `${server}: tool name ${JSON.stringify(definition.name.slice(0, 80))} is not allowed; not exposed`,
        )
        continue
      }
      if (colliding.has(definition.name)) continue
      const risk = riskOf(definition, hash)
      tools.push(
        Object.freeze({
          server,
          name: definition.name,
          ident,
          definition,
          hash: hash as DefinitionHash,
          ...(risk ? { risk } : {}),
        }),
      )
    }
    return tools
  }

  /** Every exposed tool of every server. */
  tools(): CatalogTool[] {
    return [...this.#servers.values()].flatMap((s) => s.tools)
  }

  /** What the catalogue knows per server (for readiness, `sluice evidence` and logs). */
  servers(): ReadonlyMap<string, ServerState> {
    return this.#servers
  }

  /** Exact, byte-for-byte lookup by the upstream's own spelling: no case folding, no normalising. */
  lookup(server: string, name: string): Lookup {
    const state = this.#servers.get(server)
    if (!state) return { kind: 'unknown' }
    const tool = state.tools.find((t) => t.name === name)
    if (tool) return { kind: 'tool', tool }
    const q = state.quarantined.find((t) => t.name === name)
    if (q) return { kind: 'quarantined', info: q }
    return { kind: 'unknown' }
  }
}
