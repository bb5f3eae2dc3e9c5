/**
 * The Redis store (`store: { redis: { url } }`): one token bucket per key, taken atomically by
 * a Lua script that reads the clock of the Redis server, so replicas with skewed clocks agree.
 * Never queues behind an outage: with the connection down, a command fails at once
 * (`disableOfflineQueue`), and one that is sent gets `commandTimeoutMs` to answer; both are
 * `STORE_UNAVAILABLE`, which admission turns into `OVERLOADED` with `retryAfterMs`.
 *
 * @module
 */
import type { createClient } from '@redis/client'
import { SluiceError } from '../errors.js'
import { BUCKET_IDLE_MS, type HoldAnswer, type RateAnswer, type SharedStore } from './store.js'

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
  url: string
  /** Prepended to every key, so several gateways can share one Redis. Default `sluice:`. */
  keyPrefix?: string
  /** How long one command may take, sent or not. Default 1000. */
  commandTimeoutMs?: number
  /** How long a (re)connect may take. Default 2000. */
  connectTimeoutMs?: number
  /** Told of connection errors (the client reconnects on its own). */
  onError?: (err: Error) => void
}

/**
 * KEYS[1] bucket; ARGV: capacity, tokens per ms, take (1/0), idle ms. Returns
 * `[1]` when a token was there (spent if take), else `[0, retryAfterMs]`.
 */
const TAKE_TOKEN = `
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local ok = tokens >= 1
if ok and ARGV[3] == '1' then tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ok then return {1} end
return {0, math.ceil((1 - tokens) / per_ms)}
`

/** KEYS[1]; ARGV: 1 when a value is expected (ARGV[2]), the new value, ttl ms. 1 when set. */
const SWAP = `
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
`

/**
 * KEYS[1] a sorted set, member → when its hold runs out (the Redis server's clock, so replicas
 * with skewed clocks agree). ARGV: member, max, hold ms. Returns `{held, count}`. The set lives
 * as long as its longest hold.
 */
const HOLD = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if count >= tonumber(ARGV[2]) then return {0, count} end
  count = count + 1
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now))
return {1, count}
`

/** KEYS[1] a hold set; ARGV[1] member. 1 while its hold runs. */
const IS_HELD = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ = redis.call('ZSCORE', KEYS[1], ARGV[1])
if until_ and tonumber(until_) > now then return 1 end
return 0
`

type Client = ReturnType<typeof createClient>

export class RedisStore implements SharedStore {
  readonly kind = 'redis'
  /** Made on `connect()`: the client library is loaded only by a gateway that uses Redis. */
  #client: Client | undefined
  readonly #options: RedisStoreOptions
  readonly #prefix: string
  readonly #timeoutMs: number
  readonly #url: string
  #connecting: Promise<unknown> | undefined
  #everReady = false
  /** A second connection for SUBSCRIBE (which takes a connection over), opened on first use. */
  #subscriber: Client | undefined
  #subscribing: Promise<Client> | undefined

  constructor(options: RedisStoreOptions) {
    this.#options = options
    this.#prefix = options.keyPrefix ?? 'sluice:'
    this.#timeoutMs = options.commandTimeoutMs ?? 1000
    this.#url = redactUrl(options.url)
  }

  /** Connects (once); the CLI awaits it at start so a wrong URL fails before serving. */
  connect(): Promise<unknown> {
    this.#connecting ??= this.#open().catch((err: unknown) => {
      this.#connecting = undefined
      throw this.#unavailable(err)
    })
    return this.#connecting
  }

  async #open(): Promise<void> {
    // Loaded here, not at the top: @redis/client is ≈500 CommonJS files (≈70 ms of every
    // process start), and most gateways keep their state in-process.
    const { createClient } = await import('@redis/client')
    const options = this.#options
    const client: Client = createClient({
      url: options.url,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: options.connectTimeoutMs ?? 2000,
        // Before the first connection a failure is final (the start fails with a clear error);
        // after it, keep trying in the background, never more than 2 s apart.
        reconnectStrategy: (retries: number, cause: Error) =>
          this.#everReady ? Math.min(2000, 50 * 2 ** Math.min(retries, 6)) : cause,
      },
    })
    client.on('error', (err: Error) => options.onError?.(err))
    client.on('ready', () => {
      this.#everReady = true
    })
    this.#client = client
    await client.connect()
  }

  async takeToken(key: string, perMinute: number, take: boolean): Promise<RateAnswer> {
    const reply = await this.#command([
      'EVAL',
      TAKE_TOKEN,
      '1',
      `${this.#prefix}rate:${key}`,
      String(perMinute),
      String(perMinute / 60_000),
      take ? '1' : '0',
      String(BUCKET_IDLE_MS),
    ])
    const [ok, retryAfterMs] = reply as [number, number?]
    return ok === 1 ? { ok: true } : { ok: false, retryAfterMs: Number(retryAfterMs) }
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#command(['SET', `${this.#prefix}${key}`, value, 'PX', String(Math.max(1, ttlMs))])
  }

  async take(key: string): Promise<string | undefined> {
    // GETDEL (Redis 6.2+): one replica gets the value, a second take finds nothing.
    const reply = await this.#command(['GETDEL', `${this.#prefix}${key}`])
    return typeof reply === 'string' ? reply : undefined
  }

  async get(key: string): Promise<string | undefined> {
    const reply = await this.#command(['GET', `${this.#prefix}${key}`])
    return typeof reply === 'string' ? reply : undefined
  }

  async swap(
    key: string,
    expected: string | undefined,
    value: string,
    ttlMs: number,
  ): Promise<boolean> {
    const reply = await this.#command([
      'EVAL',
      SWAP,
      '1',
      `${this.#prefix}${key}`,
      expected === undefined ? '0' : '1',
      expected ?? '',
      value,
      String(Math.max(1, Math.ceil(ttlMs))),
    ])
    return reply === 1
  }

  async hold(key: string, member: string, max: number, holdMs: number): Promise<HoldAnswer> {
    const reply = await this.#command([
      'EVAL',
      HOLD,
      '1',
      `${this.#prefix}hold:${key}`,
      member,
      String(max),
      String(Math.max(1, Math.ceil(holdMs))),
    ])
    const [held, count] = reply as [number, number]
    return { held: held === 1, count: Number(count) }
  }

  async isHeld(key: string, member: string): Promise<boolean> {
    const reply = await this.#command(['EVAL', IS_HELD, '1', `${this.#prefix}hold:${key}`, member])
    return reply === 1
  }

  async release(key: string, member: string): Promise<void> {
    await this.#command(['ZREM', `${this.#prefix}hold:${key}`, member])
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#command(['PUBLISH', `${this.#prefix}${channel}`, message])
  }

  async subscribe(
    channel: string,
    listener: (message: string) => void,
  ): Promise<() => Promise<void>> {
    const subscriber = await this.#openSubscriber()
    const name = `${this.#prefix}${channel}`
    // A wrapper per subscription, so unsubscribing one leaves the others of the same listener.
    const own = (message: string): void => listener(message)
    try {
      await subscriber.subscribe(name, own)
    } catch (err) {
      throw this.#unavailable(err)
    }
    return async () => {
      try {
        await subscriber.unsubscribe(name, own)
      } catch {
        // Closed already: nothing is delivered any more either way.
      }
    }
  }

  #openSubscriber(): Promise<Client> {
    this.#subscribing ??= (async () => {
      // The duplicate reconnects on its own and subscribes again to what it had.
      if (this.#client === undefined) throw this.#unavailable(new Error('not connected'))
      const subscriber = this.#client.duplicate()
      subscriber.on('error', (err: Error) => this.#options.onError?.(err))
      this.#subscriber = subscriber
      try {
        await subscriber.connect()
      } catch (err) {
        this.#subscribing = undefined
        this.#subscriber = undefined
        throw this.#unavailable(err)
      }
      return subscriber
    })()
    return this.#subscribing
  }

  async #command(args: string[]): Promise<unknown> {
    // Reconnecting (the client does it on its own): fail now rather than queue behind it.
    const client = this.#client
    if (client?.isReady !== true) throw this.#unavailable(new Error('not connected'))
    try {
      return await client.sendCommand(args, {
        timeout: this.#timeoutMs,
        rejectInFlight: true,
      })
    } catch (err) {
      throw this.#unavailable(err)
    }
  }

  #unavailable(err: unknown): SluiceError {
    const why = err instanceof Error ? err.message : String(err)
    return new SluiceError(
      'STORE_UNAVAILABLE',
      `the Redis store at ${this.#url} did not answer: ${why}`,
    )
  }

  async close(): Promise<void> {
    for (const client of [this.#subscriber, this.#client]) {
      try {
        if (client?.isOpen) await client.close()
      } catch {
        // Already closed or never connected.
      }
    }
  }
}

/** The URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return 'the configured URL'
  }
}
