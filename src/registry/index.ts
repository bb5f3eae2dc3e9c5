/**
 * The registry of pinned tool definitions: canonical JSON and definition hashes, the lock file
 * (`sluice.lock.json`) with an optional detached JWS signature, and `reconcile`, which
 * quarantines a tool whose live definition drifted from its pin (the rug pull, TP-02).
 *
 * Errors: `LOCK_INVALID` (malformed lock, naming file and path), `SIGNATURE_INVALID` (bad or
 * missing signature when a public key is configured; unusable key file).
 *
 * @module
 */
export {
  canonicalJson,
  hashDefinition,
  pinnedDefinition,
  PINNED_FIELDS,
  MAX_CANONICAL_DEPTH,
} from './canonical.js'
export {
  createLock,
  writeLock,
  readLock,
  parseLock,
  signLock,
  verifyLock,
  readLockKey,
  lockSourceOf,
  lockSigningInput,
  LOCK_VERSION,
  LOCK_JWS_TYPE,
} from './lock.js'
export type {
  LockFile,
  LockServerEntry,
  LockTool,
  LockSource,
  LockKey,
  ServerSnapshot,
  WriteLockOptions,
  ReadLockOptions,
} from './lock.js'
export { reconcile } from './reconcile.js'
export type { ReconcileOptions, ReconcileResult, QuarantinedTool } from './reconcile.js'
