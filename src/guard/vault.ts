/**
 * The vault: PII values kept host-side behind the tokens the model sees. The same value gives
 * the same token within one scope (a principal's session), a token resolves only in the scope
 * that made it, and nothing outlives `ttlSeconds`. Behind an interface, because a scaled-out
 * deployment keeps it in a shared store; {@link MemoryVault} is the in-process one.
 *
 * @module
 */
import type { PiiKind } from '../config/index.js'

/** One value to tokenise. */
export interface VaultItem {
  kind: PiiKind
  value: string
}

/** What a token stands for, with the labels of the calls that produced the value. */
export interface VaultEntry {
  kind: PiiKind
  value: string
  labels: readonly string[]
}

export interface Vault {
  /**
   * The token of each item in `scope`, made when new; `labels` join the labels of the value
   * (a value seen from two sources carries both). `undefined` for an item the vault has no room
   * for: the caller redacts it rather than let it through.
   */
  tokenize(
    scope: string,
    items: readonly VaultItem[],
    labels: readonly string[],
  ): Promise<Array<string | undefined>>
  /** What each token stands for in `scope`; `undefined` for one unknown there or expired. */
  resolve(scope: string, tokens: readonly string[]): Promise<Array<VaultEntry | undefined>>
}

/** The limits of an in-process vault (`guardrails.pii`). */
export interface MemoryVaultOptions {
  ttlSeconds: number
  maxValuesPerSession: number
  maxValues: number
  /** Epoch milliseconds; tests move it. */
  now?: () => number
}

/**
 * Entries per value of a kind: one map per kind, so a lookup hashes the value itself and builds
 * no key string.
 */
export class ByKind<V> {
  readonly #maps = new Map<PiiKind, Map<string, V>>()
  #size = 0

  /** Entries over every kind. */
  get size(): number {
    return this.#size
  }

  get(kind: PiiKind, value: string): V | undefined {
    return this.#maps.get(kind)?.get(value)
  }

  set(kind: PiiKind, value: string, entry: V): void {
    let map = this.#maps.get(kind)
    if (map === undefined) {
      map = new Map()
      this.#maps.set(kind, map)
    }
    const before = map.size
    if (map.set(value, entry).size > before) this.#size++
  }

  delete(kind: PiiKind, value: string): void {
    if (this.#maps.get(kind)?.delete(value) === true) this.#size--
  }
}

/** `[KIND_n]` for the n-th value of `kind` in a scope. */
export function tokenFor(kind: PiiKind, n: number): string {
  return `[${kind.toUpperCase()}_${n}]`
}

interface Stored {
  token: string
  kind: PiiKind
  value: string
  labels: Set<string>
  expiresAt: number
  scope: Scope
}

interface Scope {
  key: string
  byValue: ByKind<Stored>
  byToken: Map<string, Stored>
  counters: Map<PiiKind, number>
}

/**
 * In-process vault. Every value has the same TTL, so one queue in creation order holds them all
 * and the expired ones are always at its head: each call drops them first, in time linear in
 * what expired. A scope whose values all expired is forgotten one TTL later (its token numbers
 * with it), so a number is never reused while a model could still hold the old token's text.
 */
export class MemoryVault implements Vault {
  readonly #options: MemoryVaultOptions
  readonly #now: () => number
  readonly #scopes = new Map<string, Scope>()
  /** Every value held, oldest first. */
  readonly #queue = new Set<Stored>()
  /** Scopes left empty, by the time they may be forgotten, oldest first. */
  readonly #empty = new Map<Scope, number>()

  constructor(options: MemoryVaultOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
  }

  /** Values held now over every scope. */
  get size(): number {
    return this.#queue.size
  }

  /** Scopes remembered now (with values, or empty and not yet forgotten). */
  get scopes(): number {
    return this.#scopes.size
  }

  async tokenize(
    scopeKey: string,
    items: readonly VaultItem[],
    labels: readonly string[],
  ): Promise<Array<string | undefined>> {
    const now = this.#now()
    this.#expire(now)
    const scope = this.#scope(scopeKey)
    return items.map(({ kind, value }) => {
      const known = scope.byValue.get(kind, value)
      if (known !== undefined) {
        for (const label of labels) known.labels.add(label)
        return known.token
      }
      if (scope.byValue.size >= this.#options.maxValuesPerSession) return undefined
      if (this.#queue.size >= this.#options.maxValues) return undefined
      const n = (scope.counters.get(kind) ?? 0) + 1
      scope.counters.set(kind, n)
      const stored: Stored = {
        token: tokenFor(kind, n),
        kind,
        value,
        labels: new Set(labels),
        expiresAt: now + this.#options.ttlSeconds * 1000,
        scope,
      }
      scope.byValue.set(kind, value, stored)
      scope.byToken.set(stored.token, stored)
      this.#queue.add(stored)
      this.#empty.delete(scope)
      return stored.token
    })
  }

  async resolve(
    scopeKey: string,
    tokens: readonly string[],
  ): Promise<Array<VaultEntry | undefined>> {
    this.#expire(this.#now())
    const scope = this.#scopes.get(scopeKey)
    return tokens.map((token) => {
      const stored = scope?.byToken.get(token)
      return stored === undefined
        ? undefined
        : { kind: stored.kind, value: stored.value, labels: [...stored.labels] }
    })
  }

  #scope(key: string): Scope {
    let scope = this.#scopes.get(key)
    if (scope === undefined) {
      scope = { key, byValue: new ByKind(), byToken: new Map(), counters: new Map() }
      this.#scopes.set(key, scope)
    }
    return scope
  }

  #expire(now: number): void {
    for (const stored of this.#queue) {
      if (stored.expiresAt > now) break
      this.#queue.delete(stored)
      const { scope } = stored
      scope.byValue.delete(stored.kind, stored.value)
      scope.byToken.delete(stored.token)
      if (scope.byValue.size === 0) {
        this.#empty.delete(scope)
        this.#empty.set(scope, stored.expiresAt + this.#options.ttlSeconds * 1000)
      }
    }
    for (const [scope, forgetAt] of this.#empty) {
      if (forgetAt > now) break
      this.#empty.delete(scope)
      this.#scopes.delete(scope.key)
    }
  }
}
