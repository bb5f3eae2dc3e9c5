/**
 * Loading a config with everything it references, checked, and reloading it while `sluice serve`
 * runs.
 *
 * `loadChecked` is what `sluice config check` runs and what a reload runs: the config file, its
 * policies (parsed and type-checked), its lock (and its signature), the JWKS files of its
 * issuers. It yields a hash of all of those bytes, which `/readyz` reports as the active config.
 *
 * A reload (on a change of any of those files, or on SIGHUP) swaps policies, lock, limits,
 * shutdown and the JWKS keys atomically: the engine builds the next generation and lists its
 * catalogue before one assignment puts it in force, and running executions finish on the one
 * they started with. A change anywhere else (servers, sandbox, audit, telemetry, gateway) needs
 * a restart, so such a reload is refused as a whole; so is any file that does not load. A refused
 * reload keeps the running config, logs file and reason, and counts
 * `sluice_config_reloads_total{result="error"}`.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { canonicalJson } from '../canonical-json.js'
import { declaredLabels, loadConfig, type Config } from '../config/index.js'
import { SluiceError } from '../errors.js'
import { createTokenVerifier, type TokenVerifier } from '../auth/index.js'
import {
  allowAllPolicy,
  loadPolicies,
  type LoadPolicyOptions,
  type PolicySet,
} from '../policy/index.js'
import { readLock, type LockFile } from '../registry/index.js'
import { metrics } from '../telemetry/index.js'
import type { LogFn } from './log.js'

/** A config and what it references, each loaded and checked. */
export interface Checked {
  config: Config
  policy: PolicySet
  lock?: LockFile
  verifier?: TokenVerifier
  /** sha256 over the config file and every file it references: the active config's name. */
  hash: string
  /** Every file that was read (config first): what a reload watches. */
  files: string[]
}

/**
 * The sections a reload may change; a change elsewhere needs a restart. `identity` is not one of
 * them (its issuers and audience also shape the gateway's RFC 9728 metadata), but the JWKS files
 * it names are re-read, so a key rotation in a JWKS file is picked up.
 */
const RELOADABLE = ['policies', 'lock', 'limits', 'shutdown'] as const

/** Policies are checked against the config that uses them: a label it never declares is a typo. */
export function policyOptionsFor(config: Config): LoadPolicyOptions {
  return { labels: { declared: declaredLabels(config), configFile: config.file ?? '<inline>' } }
}

/** Loads `file` with everything it references. Throws SluiceError naming the file and the reason. */
export async function loadChecked(
  file: string,
  options: {
    requirePolicies?: boolean
    /** `file` loaded already (`loadConfig(file)`): its references are checked, not it again. */
    config?: Config
  } = {},
): Promise<Checked> {
  const config = options.config ?? loadConfig(file)
  const files = [config.file ?? resolve(file), ...referencedFiles(config)]
  const hasPolicies = config.policies !== undefined && config.policies.length > 0
  if (!hasPolicies && options.requirePolicies === true) {
    throw new SluiceError(
      'CONFIG_INVALID',
      `${config.file ?? file}: policies: required by \`sluice serve\` (or pass --insecure-dev on loopback to allow every tool)`,
    )
  }
  const policy = hasPolicies
    ? loadPolicies(config.policies!, policyOptionsFor(config))
    : allowAllPolicy()
  const lock = config.lock
    ? await readLock(
        config.lock.file,
        config.lock.publicKeyFile ? { publicKeyFile: config.lock.publicKeyFile } : {},
      )
    : undefined
  const verifier = config.identity ? createTokenVerifier(config.identity) : undefined
  const hash = createHash('sha256')
  for (const path of files) {
    hash.update(`${path}\0`)
    hash.update(await readFile(path))
    hash.update('\0')
  }
  return {
    config,
    policy,
    ...(lock === undefined ? {} : { lock }),
    ...(verifier === undefined ? {} : { verifier }),
    hash: `sha256:${hash.digest('hex')}`,
    files,
  }
}

/** The files a config reads besides itself: policies, the lock and its key, JWKS files. */
export function referencedFiles(config: Config): string[] {
  const files = [...(config.policies ?? [])]
  if (config.lock) {
    files.push(config.lock.file)
    if (config.lock.publicKeyFile) files.push(config.lock.publicKeyFile)
  }
  for (const issuer of config.identity?.issuers ?? [])
    if (issuer.jwksFile) files.push(issuer.jwksFile)
  return files
}

/** The sections of `next` that differ from `current` and only a restart can apply. */
export function needsRestart(current: Config, next: Config): string[] {
  const strip = (c: Config) => {
    const { file: _file, baseDir: _base, ...rest } = c as Config & Record<string, unknown>
    const out: Record<string, unknown> = { ...rest }
    for (const key of RELOADABLE) delete out[key]
    return out
  }
  const a = strip(current)
  const b = strip(next)
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((key) => canonicalJson(a[key] ?? null) !== canonicalJson(b[key] ?? null))
    .sort()
}

export interface ReloaderOptions {
  file: string
  current: Checked
  /** A reload without policies is refused (`sluice serve` without --insecure-dev). */
  requirePolicies: boolean
  /** Puts a checked config in force (the engine's generation, the verifier). */
  apply(next: Checked): Promise<void>
  log: LogFn
  /** Quiet time after a change before the reload starts (editors write in several steps). */
  debounceMs?: number
}

/** Watches a config and its files, and reloads on change or SIGHUP. */
export class ConfigReloader {
  readonly #options: ReloaderOptions
  #current: Checked
  #watchers: FSWatcher[] = []
  #timer: NodeJS.Timeout | undefined
  #running: Promise<unknown> = Promise.resolve()
  readonly #onHup = () => void this.reload('SIGHUP')

  constructor(options: ReloaderOptions) {
    this.#options = options
    this.#current = options.current
  }

  /** The config in force. */
  get current(): Checked {
    return this.#current
  }

  start(): void {
    process.on('SIGHUP', this.#onHup)
    this.#watch()
  }

  close(): void {
    process.off('SIGHUP', this.#onHup)
    clearTimeout(this.#timer)
    for (const w of this.#watchers.splice(0)) w.close()
  }

  /** Reloads now (serialised with any reload in progress); resolves with what happened. */
  reload(reason: string): Promise<'ok' | 'unchanged' | 'error'> {
    const next = this.#running.then(() => this.#reloadNow(reason))
    this.#running = next.catch(() => undefined)
    return next
  }

  async #reloadNow(reason: string): Promise<'ok' | 'unchanged' | 'error'> {
    const { log } = this.#options
    let next: Checked
    try {
      next = await loadChecked(this.#options.file, {
        requirePolicies: this.#options.requirePolicies,
      })
      const restart = needsRestart(this.#current.config, next.config)
      if (restart.length > 0) {
        throw new Error(
          `${restart.join(', ')} changed: a restart is needed to apply ${restart.length === 1 ? 'it' : 'them'}, so nothing was reloaded`,
        )
      }
    } catch (cause) {
      metrics.configReloads.inc({ result: 'error' })
      log('error', `config reload (${reason}) refused; the running config stays in force`, {
        file: this.#options.file,
        error: cause instanceof Error ? cause.message : String(cause),
        activeConfig: this.#current.hash,
      })
      return 'error'
    }
    if (next.hash === this.#current.hash) {
      log('info', `config reload (${reason}): nothing changed`, { activeConfig: next.hash })
      return 'unchanged'
    }
    try {
      await this.#options.apply(next)
    } catch (cause) {
      metrics.configReloads.inc({ result: 'error' })
      log('error', `config reload (${reason}) failed to apply; the running config stays in force`, {
        error: cause instanceof Error ? cause.message : String(cause),
        activeConfig: this.#current.hash,
      })
      return 'error'
    }
    const previous = this.#current.hash
    this.#current = next
    metrics.configReloads.inc({ result: 'ok' })
    log('info', `config reloaded (${reason})`, {
      activeConfig: next.hash,
      previousConfig: previous,
    })
    // New files may be referenced now.
    this.#watch()
    return 'ok'
  }

  /** Watches the folders of the files (editors replace a file by renaming another over it). */
  #watch(): void {
    for (const w of this.#watchers.splice(0)) w.close()
    const byDir = new Map<string, Set<string>>()
    for (const file of this.#current.files) {
      const dir = dirname(file)
      const names = byDir.get(dir) ?? new Set<string>()
      names.add(basename(file))
      byDir.set(dir, names)
    }
    for (const [dir, names] of byDir) {
      try {
        const watcher = watch(dir, (_event, name) => {
          if (name === null || names.has(name.toString())) this.#changed()
        })
        watcher.on('error', () => undefined)
        watcher.unref()
        this.#watchers.push(watcher)
      } catch (cause) {
        this.#options.log('warn', `cannot watch ${dir} for config changes; SIGHUP still reloads`, {
          error: cause instanceof Error ? cause.message : String(cause),
        })
      }
    }
  }

  #changed(): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => void this.reload('file change'), this.#options.debounceMs ?? 250)
    this.#timer.unref()
  }
}
