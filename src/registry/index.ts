/**
 * The registry of pinned tool definitions: canonical JSON and definition hashes, the lock file
 * (`sluice.lock.json`) with an optional detached JWS signature, and `reconcile`, which
 * quarantines a tool whose live definition drifted from its pin (the rug pull, TP-02).
 *
 * It also reads MCP Registries (`client.ts`, the v0.1 read API), validates their `server.json`
 * entries (`server-json.ts`) and turns one into a config entry (`import.ts`).
 *
 * Errors: `LOCK_INVALID` (malformed lock, naming file and path), `SIGNATURE_INVALID` (bad or
 * missing signature when a public key is configured; unusable key file), `REGISTRY_UNAVAILABLE`,
 * `REGISTRY_INVALID`, `REGISTRY_NOT_FOUND`.
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
  LockOrigin,
  LockKey,
  ServerSnapshot,
  WriteLockOptions,
  ReadLockOptions,
} from './lock.js'
export { reconcile } from './reconcile.js'
export type { ReconcileOptions, ReconcileResult, QuarantinedTool } from './reconcile.js'
export {
  RegistryClient,
  parseEntrySpec,
  MAX_REGISTRY_RESPONSE_BYTES,
  MAX_REGISTRY_PAGES,
  REGISTRY_PAGE_LIMIT,
} from './client.js'
export type { EntrySpec, RegistryClientOptions } from './client.js'
export { importEntry, registryKey, defaultSecretRef, RUNNABLE_PACKAGE_TYPES } from './import.js'
export type { ImportOptions, ImportedServer } from './import.js'
export { serverDetailSchema, SERVER_JSON_SCHEMA_URL, REGISTRY_NAME_PATTERN } from './server-json.js'
export type { RegistryEntry, ServerDetail, EntryStatus } from './server-json.js'
export {
  toolRisk,
  serverRisk,
  secretsOf,
  riskLevel,
  unpinnedPackage,
  RISK_WEIGHTS,
  HIGH_RISK,
  MEDIUM_RISK,
  MAX_RISK_SCORE,
} from './risk.js'
export type { Risk, ServerFacts } from './risk.js'
export { diffLocks, diffSchema, describeSource, renderDiffMarkdown } from './diff.js'
export type {
  LockDiff,
  ServerChange,
  ToolChange,
  AnnotationChange,
  SchemaChange,
  Change,
} from './diff.js'
