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
  DEFAULT_TASKS,
  SERVER_NAME_PATTERN,
  HTTP_SERVER_TYPES,
  effectiveExporter,
} from './schema.js'
export type {
  RawConfig,
  Limits,
  Grant,
  ServerConfig,
  StdioServerConfig,
  HttpServerConfig,
} from './schema.js'
export { loadConfig, parseConfig, readSecretRef, deepFreeze, isSecretHeader } from './load.js'
export type { Config, LoadOptions } from './load.js'
export { expandVars, inputEnvName, workspaceFolderOf } from './expand.js'
export type { ExpandOptions } from './expand.js'
export { IGNORED_CLIENT_KEYS, SERVER_TYPES, MAX_CLIENT_TIMEOUT_SECONDS } from './clients.js'
