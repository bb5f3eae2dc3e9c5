/**
 * Config: the zod schema, defaults, and the loader that turns a file into a frozen `Config`.
 *
 * @module
 */
export {
  configSchema,
  limitsSchema,
  grantSchema,
  serverSchema,
  identitySchema,
  DEFAULT_LIMITS,
  DEFAULT_RESUMABILITY,
  DEFAULT_PII,
  PII_KINDS,
  RESOLVE_FOR_PATTERN,
  DEFAULT_TASKS,
  DEFAULT_HEAP_GROWTH_PERCENT,
  SERVER_NAME_PATTERN,
  LABEL_PATTERN,
  MAX_LABELS_PER_ENTRY,
  HTTP_SERVER_TYPES,
  REGISTRY_SERVER_PATTERN,
  DEFAULT_REGISTRY_TIMEOUT_MS,
  registrySchema,
  effectiveExporter,
} from './schema.js'
export type {
  RawConfig,
  Limits,
  Grant,
  ServerConfig,
  StdioServerConfig,
  HttpServerConfig,
  PiiKind,
  Guardrails,
  RegistryConfig,
} from './schema.js'
export {
  loadConfig,
  parseConfig,
  readSecretRef,
  deepFreeze,
  isSecretHeader,
  configError,
} from './load.js'
export { declaredLabels, toolLabels } from './labels.js'
export { VAULT_KEY_BYTES, parseVaultKey, readVaultKey } from './vault-key.js'
export type { Config, LoadOptions } from './load.js'
export { expandVars, inputEnvName, workspaceFolderOf } from './expand.js'
export type { ExpandOptions } from './expand.js'
export { IGNORED_CLIENT_KEYS, SERVER_TYPES, MAX_CLIENT_TIMEOUT_SECONDS } from './clients.js'
