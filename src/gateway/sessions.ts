/**
 * Stateful MCP sessions over Streamable HTTP: session id → transport, server and the principal
 * that opened it. The session id is routing, never proof of identity (PRT-05): every request
 * still carries a verified token, and it must name the session's subject. Idle sessions expire;
 * the number of sessions is capped.
 *
 * @module
 */
import type { Server } from '@modelcontextprotocol/sdk/server/index.js'
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { Principal } from '../types.js'

/** Sessions idle (no request) this long are closed. */
export const DEFAULT_SESSION_IDLE_MS = 30 * 60_000
/** At most this many sessions at once; `initialize` beyond it gets 503. */
export const DEFAULT_MAX_SESSIONS = 1000

export interface Session {
  readonly id: string
  readonly transport: StreamableHTTPServerTransport
  readonly server: Server
  readonly principal: Principal
  /** Requests being handled; a session is never expired under a running request. */
  inflight: number
  timer: NodeJS.Timeout | undefined
}

export interface SessionStoreOptions {
  idleMs: number
  maxSessions: number
  /** Told when a session ends because it was idle for `idleMs`. */
  onIdleClose?: (id: string) => void
}

/** True when `a` and `b` are the same caller: same subject from the same issuer. */
export function samePrincipal(a: Principal, b: Principal): boolean {
  return a.sub === b.sub && a.iss === b.iss && a.tenant === b.tenant
}

export class SessionStore {
  readonly #sessions = new Map<string, Session>()
  readonly #idleMs: number
  readonly #maxSessions: number
  readonly #onIdleClose: ((id: string) => void) | undefined

  constructor(options: SessionStoreOptions) {
    if (!Number.isInteger(options.maxSessions) || options.maxSessions < 1) {
      throw new TypeError('maxSessions must be a positive integer')
    }
    if (!(options.idleMs > 0)) throw new TypeError('sessionIdleMs must be positive')
    this.#idleMs = options.idleMs
    this.#maxSessions = options.maxSessions
    this.#onIdleClose = options.onIdleClose
  }

  get size(): number {
    return this.#sessions.size
  }

  get maxSessions(): number {
    return this.#maxSessions
  }

  isFull(): boolean {
    return this.#sessions.size >= this.#maxSessions
  }

  get(id: string): Session | undefined {
    return this.#sessions.get(id)
  }

  add(session: Omit<Session, 'inflight' | 'timer'>): void {
    const s: Session = { ...session, inflight: 0, timer: undefined }
    this.#sessions.set(s.id, s)
    this.#arm(s)
  }

  /** Marks a request as started; call `end` in a finally. */
  begin(session: Session): void {
    session.inflight++
    if (session.timer !== undefined) clearTimeout(session.timer)
    session.timer = undefined
  }

  end(session: Session): void {
    session.inflight = Math.max(0, session.inflight - 1)
    if (session.inflight === 0 && this.#sessions.get(session.id) === session) this.#arm(session)
  }

  /** Forgets the session (after the transport closed). Idempotent. */
  remove(id: string): void {
    const s = this.#sessions.get(id)
    if (s === undefined) return
    if (s.timer !== undefined) clearTimeout(s.timer)
    this.#sessions.delete(id)
  }

  /** Closes one session's transport and server; errors are swallowed so teardown completes. */
  async close(id: string): Promise<void> {
    const s = this.#sessions.get(id)
    if (s === undefined) return
    this.remove(id)
    await closeQuietly(s)
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#sessions.keys()].map((id) => this.close(id)))
  }

  #arm(session: Session): void {
    if (session.timer !== undefined) clearTimeout(session.timer)
    session.timer = setTimeout(() => {
      if (session.inflight !== 0) return
      void this.close(session.id).then(() => this.#onIdleClose?.(session.id))
    }, this.#idleMs)
    session.timer.unref()
  }
}

async function closeQuietly(session: Pick<Session, 'transport' | 'server'>): Promise<void> {
  try {
    await session.transport.close()
  } catch {
    // Already closed or a dead socket: nothing left to release.
  }
  try {
    await session.server.close()
  } catch {
    // Same.
  }
}
