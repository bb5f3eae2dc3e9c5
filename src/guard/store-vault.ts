/**
 * The shared vault: the PII vault kept in the shared store (`store.redis`), so a token made on
 * one replica resolves on every other, and the same value gets the same token on all of them.
 *
 * Per scope (a digest of a principal's session, never an identity) the store holds:
 * - `vault:<scope>:v:<mac>`: the token of one value, `mac` an HMAC of scope, kind and value
 *   under the vault key, so a key name says nothing about the value and the same value in two
 *   scopes cannot be linked;
 * - `vault:<scope>:t:<token>`: the value, its kind and labels, AES-256-GCM under the vault key
 *   and bound to that key name, so a ciphertext moved to another token or scope does not open;
 * - `vault:<scope>:n`: the scope's counter per kind, so numbers never collide;
 * - the hold set `vault:<scope>`: one member per value held, which is what bounds a session at
 *   `maxValuesPerSession` across replicas.
 * Every key has a TTL. A value and its token live `ttlSeconds` from when it was made (seeing it
 * again does not extend it); the counter lives two TTLs from the last value made, so a number is
 * never reused while a model could still hold the old token's text (as in {@link MemoryVault}).
 *
 * Replicas agree by compare-and-set (`swap`): the counter is claimed by a swap from the value
 * read, an entry and a value's token are created only where none is, so of two replicas
 * tokenising one new value at once, one token wins and the other replica adopts it.
 *
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { PII_KINDS, type PiiKind } from '../config/index.js'
import { SluiceError } from '../errors.js'
import { unreadable, VaultCipher } from './seal.js'
import { tokenFor, type Vault, type VaultEntry, type VaultItem } from './vault.js'

/**
 * What the vault needs of the shared store; src/store's `SharedStore` has all of it (a leaf
 * module names the operations it uses rather than import another leaf).
 */
export interface VaultStore {
  get(key: string): Promise<string | undefined>
  swap(key: string, expected: string | undefined, value: string, ttlMs: number): Promise<boolean>
  take(key: string): Promise<string | undefined>
  hold(
    key: string,
    member: string,
    max: number,
    holdMs: number,
  ): Promise<{ held: boolean; count: number }>
  release(key: string, member: string): Promise<void>
}

export interface StoreVaultOptions {
  store: VaultStore
  /** The 32-byte vault key (`guardrails.pii.vaultKeyFrom`); every replica needs the same. */
  key: Uint8Array
  /** How long a token resolves after it was made; fractions of a second are for tests. */
  ttlSeconds: number
  maxValuesPerSession: number
  /** Compare-and-set attempts before `VAULT_CONTENDED`; default {@link VAULT_SWAP_ATTEMPTS}. */
  maxSwapAttempts?: number
}

/**
 * Compare-and-set attempts on one scope before `VAULT_CONTENDED`. A race needs two replicas
 * making new values for one session at the same moment; with jittered backoff between
 * attempts, 16 losses in a row means the store is being hammered, not unlucky.
 */
export const VAULT_SWAP_ATTEMPTS = 16

/** The longest pause between two attempts; it grows from 2 ms, randomised. */
const BACKOFF_MAX_MS = 50

/** A scope as the engine makes it (a digest); anything else is a bug, not a key name. */
const SCOPE = /^[A-Za-z0-9_-]{1,128}$/
/** A token as {@link tokenFor} spells it. */
const TOKEN = /^\[([A-Z_]+)_([1-9][0-9]{0,8})\]$/
const KINDS: ReadonlySet<string> = new Set(PII_KINDS)

/** An entry as it is sealed: short names, it is stored once per value. */
interface Sealed {
  /** kind */
  k: PiiKind
  /** value */
  v: string
  /** labels */
  l: string[]
  /** when it expires, epoch ms */
  e: number
}

/** One distinct value of a tokenize call. */
interface Slot {
  kind: PiiKind
  value: string
  mac: string
  /** Indexes in the call's items that are this value. */
  at: number[]
  token?: string
}

export class StoreVault implements Vault {
  readonly #store: VaultStore
  readonly #cipher: VaultCipher
  readonly #ttlMs: number
  readonly #maxValuesPerSession: number
  readonly #attempts: number

  constructor(options: StoreVaultOptions) {
    this.#store = options.store
    this.#cipher = new VaultCipher(options.key)
    this.#ttlMs = Math.max(1, Math.round(options.ttlSeconds * 1000))
    this.#maxValuesPerSession = options.maxValuesPerSession
    this.#attempts = options.maxSwapAttempts ?? VAULT_SWAP_ATTEMPTS
  }

  async tokenize(
    scope: string,
    items: readonly VaultItem[],
    labels: readonly string[],
  ): Promise<Array<string | undefined>> {
    checkScope(scope)
    const slots = new Map<string, Slot>()
    items.forEach(({ kind, value }, i) => {
      const mac = this.#cipher.mac(scope, kind, value)
      const slot = slots.get(mac)
      if (slot === undefined) slots.set(mac, { kind, value, mac, at: [i] })
      else slot.at.push(i)
    })
    const all = [...slots.values()]
    const known = await Promise.all(all.map((slot) => this.#tokenOf(scope, slot.mac)))
    const fresh: Slot[] = []
    const merges: Array<Promise<void>> = []
    all.forEach((slot, i) => {
      const token = known[i]
      if (token === undefined) {
        fresh.push(slot)
      } else {
        slot.token = token
        if (labels.length > 0) merges.push(this.#addLabels(scope, token, labels))
      }
    })
    await Promise.all(merges)
    if (fresh.length > 0) await this.#create(scope, fresh, unique(labels))
    const out = new Array<string | undefined>(items.length).fill(undefined)
    for (const slot of all) for (const i of slot.at) out[i] = slot.token
    return out
  }

  async resolve(scope: string, tokens: readonly string[]): Promise<Array<VaultEntry | undefined>> {
    checkScope(scope)
    return Promise.all(
      tokens.map(async (token) => {
        const kind = kindOf(token)
        if (kind === undefined) return undefined
        const key = entryKey(scope, token)
        const sealed = await this.#store.get(key)
        if (sealed === undefined) return undefined
        const entry = this.#openEntry(sealed, key)
        if (entry.k !== kind) throw unreadable()
        // The store's TTL should have dropped it; a TTL changed in the store does not extend it.
        if (entry.e <= Date.now()) return undefined
        return { kind: entry.k, value: entry.v, labels: entry.l }
      }),
    )
  }

  /** New values: a place in the scope's hold set each, then numbers, then entries. */
  async #create(scope: string, fresh: Slot[], labels: readonly string[]): Promise<void> {
    const held = heldKey(scope)
    const room = await Promise.all(
      fresh.map((slot) => this.#store.hold(held, slot.mac, this.#maxValuesPerSession, this.#ttlMs)),
    )
    // Past maxValuesPerSession a value has no token: the caller redacts it.
    let pending = fresh.filter((_, i) => room[i]!.held)
    try {
      for (let attempt = 1; pending.length > 0; attempt++) {
        if (attempt > this.#attempts) throw this.#contended('make new tokens')
        if (attempt > 1) await backoff(attempt)
        const numbers = await this.#claim(scope, pending)
        if (numbers === undefined) continue
        const placed = await Promise.all(
          pending.map((slot, i) => this.#place(scope, slot, numbers[i]!, labels)),
        )
        pending = pending.filter((_, i) => !placed[i])
      }
    } finally {
      // Values left without a token (the attempts ran out, the store failed) free their place.
      await Promise.allSettled(pending.map((slot) => this.#store.release(held, slot.mac)))
    }
  }

  /** The next number of each slot's kind, claimed in one swap; undefined when it lost a race. */
  async #claim(scope: string, slots: readonly Slot[]): Promise<number[] | undefined> {
    const key = counterKey(scope)
    const current = await this.#store.get(key)
    const counts = parseCounts(current)
    const numbers = slots.map((slot) => {
      const n = (counts[slot.kind] ?? 0) + 1
      counts[slot.kind] = n
      return n
    })
    const won = await this.#store.swap(key, current, JSON.stringify(counts), 2 * this.#ttlMs)
    return won ? numbers : undefined
  }

  /**
   * Makes `slot`'s entry under token number `n`, then its value's token. False when the number
   * turned out taken (the counter was lost from the store: the next attempt claims another).
   */
  async #place(scope: string, slot: Slot, n: number, labels: readonly string[]): Promise<boolean> {
    const token = tokenFor(slot.kind, n)
    const expiresAt = Date.now() + this.#ttlMs
    const key = entryKey(scope, token)
    const entry: Sealed = { k: slot.kind, v: slot.value, l: [...labels], e: expiresAt }
    // The entry first, so a token found by value always has its entry.
    const sealed = this.#cipher.seal(JSON.stringify(entry), key)
    if (!(await this.#store.swap(key, undefined, sealed, this.#ttlMs))) return false
    const byValue = valueKey(scope, slot.mac)
    const ttlMs = Math.max(1, expiresAt - Date.now())
    if (await this.#store.swap(byValue, undefined, this.#cipher.seal(token, byValue), ttlMs)) {
      slot.token = token
      return true
    }
    // Another replica gave this value its token first: that one stands, ours goes.
    await this.#store.take(key)
    const theirs = await this.#tokenOf(scope, slot.mac)
    if (theirs === undefined) return false
    slot.token = theirs
    if (labels.length > 0) await this.#addLabels(scope, theirs, labels)
    return true
  }

  /** The token of a value, sealed to its key so it cannot be pointed at another value's. */
  async #tokenOf(scope: string, mac: string): Promise<string | undefined> {
    const key = valueKey(scope, mac)
    const sealed = await this.#store.get(key)
    if (sealed === undefined) return undefined
    const token = this.#cipher.open(sealed, key)
    if (kindOf(token) === undefined) throw unreadable()
    return token
  }

  /** Joins `labels` into a token's entry, keeping its expiry: a second source adds its own. */
  async #addLabels(scope: string, token: string, labels: readonly string[]): Promise<void> {
    const key = entryKey(scope, token)
    for (let attempt = 1; ; attempt++) {
      const sealed = await this.#store.get(key)
      if (sealed === undefined) return
      const entry = this.#openEntry(sealed, key)
      const missing = unique(labels).filter((l) => !entry.l.includes(l))
      const ttlMs = entry.e - Date.now()
      if (missing.length === 0 || ttlMs <= 0) return
      const next = this.#cipher.seal(JSON.stringify({ ...entry, l: [...entry.l, ...missing] }), key)
      if (await this.#store.swap(key, sealed, next, ttlMs)) return
      if (attempt >= this.#attempts) throw this.#contended('join the labels of a value')
      await backoff(attempt + 1)
    }
  }

  #openEntry(sealed: string, key: string): Sealed {
    let entry: unknown
    try {
      entry = JSON.parse(this.#cipher.open(sealed, key))
    } catch (cause) {
      if (cause instanceof SluiceError) throw cause
      throw unreadable(cause)
    }
    if (!isSealed(entry)) throw unreadable()
    return entry
  }

  #contended(what: string): SluiceError {
    return new SluiceError(
      'VAULT_CONTENDED',
      `the PII vault could not ${what} in ${this.#attempts} compare-and-set attempts: other replicas kept changing the same session's vault in the store; nothing was let through`,
    )
  }
}

function checkScope(scope: string): void {
  if (!SCOPE.test(scope))
    throw new TypeError('StoreVault: a scope is a digest (letters, digits, _ and -, at most 128)')
}

function counterKey(scope: string): string {
  return `vault:${scope}:n`
}
function heldKey(scope: string): string {
  return `vault:${scope}`
}
function valueKey(scope: string, mac: string): string {
  return `vault:${scope}:v:${mac}`
}
function entryKey(scope: string, token: string): string {
  return `vault:${scope}:t:${token}`
}

function kindOf(token: string): PiiKind | undefined {
  const kind = TOKEN.exec(token)?.[1]?.toLowerCase()
  return kind !== undefined && KINDS.has(kind) ? (kind as PiiKind) : undefined
}

/** The counter's numbers; a missing or unreadable counter starts again at 0 (see `#place`). */
function parseCounts(text: string | undefined): Partial<Record<PiiKind, number>> {
  if (text === undefined) return {}
  try {
    const parsed: unknown = JSON.parse(text)
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return {}
    const counts: Partial<Record<PiiKind, number>> = {}
    for (const [kind, n] of Object.entries(parsed))
      if (KINDS.has(kind) && Number.isSafeInteger(n) && (n as number) > 0)
        counts[kind as PiiKind] = n as number
    return counts
  } catch {
    return {}
  }
}

function isSealed(value: unknown): value is Sealed {
  if (value === null || typeof value !== 'object') return false
  const e = value as Record<string, unknown>
  return (
    typeof e['k'] === 'string' &&
    KINDS.has(e['k']) &&
    typeof e['v'] === 'string' &&
    Array.isArray(e['l']) &&
    e['l'].every((l) => typeof l === 'string') &&
    typeof e['e'] === 'number'
  )
}

function unique(labels: readonly string[]): string[] {
  return [...new Set(labels)]
}

function backoff(attempt: number): Promise<void> {
  return sleep(Math.random() * Math.min(BACKOFF_MAX_MS, 2 ** attempt))
}
