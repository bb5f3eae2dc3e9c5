/**
 * The upstreams of one gateway: one `Upstream` per configured server, created up front (they
 * connect lazily) and closed together.
 *
 * @module
 */
import type { ServerConfig } from '../config/index.js'
import {
  Upstream,
  type UpstreamHealth,
  type UpstreamLogger,
  type UpstreamOptions,
} from './upstream.js'

/** `clientInfo` sent to upstreams when the caller gives none. */
export const DEFAULT_CLIENT_INFO = Object.freeze({ name: 'sluice', version: '0.1.0' })

export interface UpstreamSetOptions {
  /** Timeout of one call for servers whose config sets no `timeoutMs` (the limits' `callTimeoutMs`). */
  callTimeoutMs: number
  /** Sent as `clientInfo` in initialize; default `{ name: 'sluice', version: '0.1.0' }`. */
  clientInfo?: { name: string; version: string }
  /** Called with the config key of a server that sent `notifications/tools/list_changed`. */
  onToolsChanged?: (server: string) => void
  logger?: UpstreamLogger
  /** Per-server options (backoff, probe, session headers…) beyond the shared ones. */
  perServer?: (
    server: string,
  ) => Partial<Omit<UpstreamOptions, 'callTimeoutMs' | 'clientInfo' | 'onToolsChanged' | 'logger'>>
}

/** All configured upstreams, by config key. */
export class UpstreamSet {
  readonly #upstreams: ReadonlyMap<string, Upstream>

  constructor(servers: Readonly<Record<string, ServerConfig>>, options: UpstreamSetOptions) {
    const map = new Map<string, Upstream>()
    for (const [name, config] of Object.entries(servers)) {
      map.set(
        name,
        new Upstream(name, config, {
          ...options.perServer?.(name),
          callTimeoutMs: options.callTimeoutMs,
          clientInfo: options.clientInfo ?? DEFAULT_CLIENT_INFO,
          ...(options.onToolsChanged === undefined
            ? {}
            : { onToolsChanged: () => options.onToolsChanged?.(name) }),
          ...(options.logger === undefined ? {} : { logger: options.logger }),
        }),
      )
    }
    this.#upstreams = map
  }

  /** The upstream of one server, or undefined when no server has that config key. */
  get(name: string): Upstream | undefined {
    return this.#upstreams.get(name)
  }

  /** Config keys of all servers, in config order. */
  names(): string[] {
    return [...this.#upstreams.keys()]
  }

  /** Health of every server, by config key. */
  health(): Record<string, UpstreamHealth> {
    return Object.fromEntries(
      [...this.#upstreams].map(([name, upstream]) => [name, upstream.health()]),
    )
  }

  /** Closes every upstream; one that fails to close does not stop the others. */
  async close(): Promise<void> {
    const results = await Promise.allSettled([...this.#upstreams.values()].map((u) => u.close()))
    const failed = results.filter((r) => r.status === 'rejected')
    if (failed.length > 0) {
      throw new AggregateError(
        failed.map((r) => (r as PromiseRejectedResult).reason),
        'some upstreams failed to close',
      )
    }
  }
}
