/**
 * store: state shared across requests and replicas (rate-limit buckets, approvals, tasks),
 * in-process or Redis.
 *
 * @module
 */
export { MemoryStore } from './memory.js'
export { RedisStore } from './redis.js'
export type { RedisStoreOptions } from './redis.js'
export { BUCKET_IDLE_MS, MEMORY_STORE_MAX_CHARS } from './store.js'
export type { HoldAnswer, RateAnswer, SharedStore } from './store.js'
