/**
 * Starting the configured upstreams, the first thing a gateway does once its config is read.
 * This module imports only the config, the redactor and the upstream client, so a command can
 * spawn its servers before it loads the engine, the sandbox and the HTTP stack: each server's
 * process boots on the other core while this one is still importing (see `sluice serve`).
 *
 * @module
 */
// From its file, not auth/index.js: that one loads jose (≈20 ms more before a server can spawn).
import { createRedactor, type Redactor } from '../auth/redactor.js'
import { isSecretHeader, readSecretRef, type Config, type ServerConfig } from '../config/index.js'
import { UpstreamSet } from '../upstream/index.js'
import type { LogFn } from './log.js'

/** Least time given to an upstream to start and answer `initialize`. */
export const CONNECT_TIMEOUT_MS = 15_000

/**
 * The session-level headers of a url server with a static grant: its initialize, listing and
 * notification stream carry the same operator secret its calls do (a server that checks its API
 * key on every request could not even be listed otherwise). Per-principal grants stay per call.
 */
export function staticSessionHeaders(
  server: ServerConfig,
  baseDir: string,
): (() => Record<string, string>) | undefined {
  const grant = server.credentials
  if (grant?.grant !== 'static' || !('url' in server)) return undefined
  return () => ({
    [grant.header]: `${grant.prefix ?? ''}${readSecretRef(grant.valueFrom, baseDir)}`,
  })
}

/** The upstreams of one config, connecting, with the redactor that knows their secrets. */
export interface StartedUpstreams {
  upstreams: UpstreamSet
  redactor: Redactor
  /** Where `notifications/tools/list_changed` goes; the engine, once there is one. */
  onToolsChanged(listener: (server: string) => void): void
  /** Closes every upstream; a second call waits for the first (whoever owns them may call it). */
  close(): Promise<void>
  /** Runs `work`; when it fails (a start that does not come up), closes the upstreams first. */
  closeOnFailure<T>(work: () => Promise<T>): Promise<T>
}

/**
 * Builds the config's upstreams and starts connecting each (not awaited: a failure here is what
 * the catalogue's first listing reports). Every secret the config holds is registered with the
 * redactor first: a server's stderr tail may echo one before its grant is ever used, and that
 * tail reaches the operator log.
 */
export function startUpstreams(config: Config, log: LogFn): StartedUpstreams {
  const redactor = createRedactor()
  let toolsChanged: ((server: string) => void) | undefined
  const upstreams = new UpstreamSet(config.servers, {
    callTimeoutMs: config.limits.callTimeoutMs,
    // Crashes, failed connects and recycled sessions reach the operator log; a server's stderr
    // tail may echo a secret it was given, so every string passes the redactor first.
    logger: {
      warn: (fields, message) =>
        log(
          'warn',
          message,
          Object.fromEntries(
            Object.entries(fields).map(([k, v]) => [
              k,
              typeof v === 'string' ? redactor.redact(v) : v,
            ]),
          ),
        ),
    },
    onToolsChanged: (server: string) => toolsChanged?.(server),
    // Starting a server (npx, a cold Node process) can take longer than one call may.
    perServer: (server) => {
      const sessionHeaders = staticSessionHeaders(config.servers[server]!, config.baseDir)
      return {
        connectTimeoutMs: Math.max(
          CONNECT_TIMEOUT_MS,
          config.servers[server]?.timeoutMs ?? config.limits.callTimeoutMs,
        ),
        ...(sessionHeaders ? { sessionHeaders } : {}),
      }
    },
  })
  registerSecrets(config, redactor, log)
  for (const name of upstreams.names())
    void upstreams
      .get(name)
      ?.connect()
      .catch(() => undefined)
  let closing: Promise<void> | undefined
  const close = () => (closing ??= upstreams.close())
  return {
    upstreams,
    redactor,
    onToolsChanged: (listener) => {
      toolsChanged = listener
    },
    close,
    async closeOnFailure(work) {
      try {
        return await work()
      } catch (cause) {
        await close().catch(() => undefined)
        throw cause
      }
    },
  }
}

/** Static secrets of the config, registered up front (see `startUpstreams`). */
function registerSecrets(config: Config, redactor: Redactor, log: LogFn): void {
  for (const [name, server] of Object.entries(config.servers)) {
    // A secret header's value came from the environment (`Bearer ${TOKEN}`): the same applies.
    for (const [header, value] of Object.entries('headers' in server ? server.headers : {})) {
      if (!isSecretHeader(header)) continue
      redactor.add(value)
      const scheme = /^\s*[A-Za-z][A-Za-z0-9-]*\s+(\S.*)$/.exec(value)
      if (scheme?.[1] !== undefined) redactor.add(scheme[1])
    }
    if (server.credentials?.grant === 'env') {
      for (const [variable, ref] of Object.entries(server.credentials.env)) {
        try {
          redactor.add(readSecretRef(ref, config.baseDir))
        } catch (cause) {
          log(
            'warn',
            `server ${name}: secret ${variable} unavailable; the server will not start until it is set`,
            { error: cause instanceof Error ? cause.message : String(cause) },
          )
        }
      }
      continue
    }
    if (server.credentials?.grant !== 'static') continue
    try {
      const value = readSecretRef(server.credentials.valueFrom, config.baseDir)
      redactor.add(value)
      if (server.credentials.prefix) redactor.add(`${server.credentials.prefix}${value}`)
    } catch (cause) {
      log(
        'warn',
        `server ${name}: static credential unavailable; calls will fail until it is set`,
        {
          error: cause instanceof Error ? cause.message : String(cause),
        },
      )
    }
  }
}
