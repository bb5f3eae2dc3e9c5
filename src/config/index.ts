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
  SERVER_NAME_PATTERN,
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
export { loadConfig, parseConfig, readSecretRef, deepFreeze, expandVars } from './load.js'
export type { Config } from './load.js'
