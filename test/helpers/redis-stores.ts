/**
 * A real redis-server for the `describe` block that calls {@link useRedisStores} (started in its
 * `beforeAll`, stopped in its `afterAll`), and the connected `RedisStore`s a test opens on it, all
 * closed in that `afterAll`.
 */
import { afterAll, beforeAll } from 'vitest'
import { RedisStore } from '../../src/store/index.js'
import { startRedis, type RedisServer } from './redis.js'

export interface RedisStores {
  /** The server (once `beforeAll` ran): its URL, and `kill()` / `restart()` for an outage. */
  readonly redis: RedisServer
  /** A connected store on the server with `keyPrefix` (one prefix is one gateway). */
  connect(keyPrefix: string): Promise<RedisStore>
  /** A store the test made itself, closed in `afterAll` with the others. */
  closeAfterAll(store: RedisStore): void
}

export function useRedisStores(options: { commandTimeoutMs: number }): RedisStores {
  let server: RedisServer | undefined
  const stores: RedisStore[] = []
  const redis = (): RedisServer => {
    if (server === undefined) throw new Error('redis-server is not started: use it inside a test')
    return server
  }
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()))
    await server?.close()
  })
  return {
    get redis() {
      return redis()
    },
    async connect(keyPrefix) {
      const store = new RedisStore({
        url: redis().url,
        keyPrefix,
        commandTimeoutMs: options.commandTimeoutMs,
      })
      stores.push(store)
      await store.connect()
      return store
    },
    closeAfterAll(store) {
      stores.push(store)
    },
  }
}
