/**
 * Audit: a hash-chained, append-only JSON-lines log of every decision, written ahead of the
 * action it records, with rotation, crash recovery and signed checkpoints; and its verifier.
 * Records carry identities, names, decisions and digests only, never arguments, code, results or
 * credentials (use `hashArgs`).
 *
 * @module
 */
export { AuditLog, DEFAULT_ROTATE_BYTES } from './audit-log.js'
export type { AppendOptions, AuditLogOptions } from './audit-log.js'
export {
  AUDIT_EVENT_TYPES,
  AUDIT_SYSTEM_TYPES,
  DEFAULT_MAX_FIELD_CHARS,
  GENESIS_HASH,
  MAX_TOOLS_PER_RECORD,
  hashRecord,
} from './record.js'
export type {
  AuditEvent,
  AuditEventType,
  AuditPrincipal,
  AuditRecord,
  AuditRecordType,
  AuditSystemType,
  TornBytes,
} from './record.js'
export { canonicalJson, hashArgs } from './canonical-json.js'
export { discoverChains, listAuditFiles, verifyAuditChain, verifyAuditFile } from './verify.js'
export type { VerifyError, VerifyOptions, VerifyReport } from './verify.js'
