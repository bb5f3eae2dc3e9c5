/**
 * `sluice lock` pins the live tool definitions of every configured server (optionally signed);
 * `sluice bindings` generates TypeScript declarations from the lock, with no live server.
 *
 * The lock is committed, so its `source` must not depend on the machine that wrote it: each
 * server's command, args and URL are recorded **as written in the config file**, before
 * `${...}` expansion (see `portableSource`). `${SLUICE_CONFIG_DIR}/files` stays exactly that, and
 * a `${API_TOKEN}` in args stays a placeholder instead of becoming a secret in a reviewed file.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import {
  describeCollision,
  generateDeclarations,
  identifierCollisions,
  renderBindingsFile,
  sanitizeIdentifier,
  type BindingProblem,
  type BindingsCoverage,
  type BindingTool,
} from '../bindings/index.js'
import { isSecretHeader, loadConfig, type Config, type ServerConfig } from '../config/index.js'
import { SluiceError } from '../errors.js'
import {
  canonicalJson,
  createLock,
  lockSourceOf,
  readLock,
  secretsOf,
  writeLock,
  type LockFile,
  type LockSource,
} from '../registry/index.js'
import type { ToolDefinition } from '../types.js'
import { UpstreamSet } from '../upstream/index.js'
import { CONNECT_TIMEOUT_MS, staticSessionHeaders } from './upstreams.js'
import { usage, type Command } from './index.js'

function lockPath(config: Config, out: string | undefined): string {
  if (out) return resolve(out)
  if (config.lock) return config.lock.file
  return join(config.baseDir, 'sluice.lock.json')
}

/** The server entries exactly as written in the config file (no `${...}` expansion). */
function rawServerEntries(config: Config): Record<string, unknown> {
  if (config.file === undefined) return {}
  // loadConfig has already validated this file; here only the unexpanded strings are wanted.
  const data = parseYaml(readFileSync(config.file, 'utf8'), { uniqueKeys: true }) as Record<
    string,
    unknown
  > | null
  const servers = data?.servers ?? data?.mcpServers
  return servers !== null && typeof servers === 'object' ? (servers as Record<string, unknown>) : {}
}

/** Drops userinfo, query and fragment from a URL that may still hold `${...}` placeholders. */
function stripUrl(url: string): string {
  return url.replace(/[?#].*$/s, '').replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1')
}

/**
 * The lock `source` of one server, independent of the machine: command, args and URL as written
 * in the config file, before `${...}` expansion. Without the raw entry (an inline config), the
 * expanded values are used with the config folder written back as `${SLUICE_CONFIG_DIR}`.
 */
export function portableSource(expanded: ServerConfig, raw: unknown, baseDir: string): LockSource {
  const entry = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>) : {}
  if ('url' in expanded) {
    return typeof entry.url === 'string' && entry.url.includes('${')
      ? { type: 'http', url: stripUrl(entry.url) }
      : lockSourceOf(expanded)
  }
  const unexpand = (text: string): string => text.split(baseDir).join('${SLUICE_CONFIG_DIR}')
  const command = typeof entry.command === 'string' ? entry.command : unexpand(expanded.command)
  const args =
    Array.isArray(entry.args) && entry.args.every((a) => typeof a === 'string')
      ? (entry.args as string[])
      : expanded.args.map(unexpand)
  return { type: 'stdio', command, args: [...args] }
}

/**
 * Starts every configured server, lists its tools and builds the lock they would be pinned in,
 * without writing it (what `sluice lock` writes and `sluice registry diff` compares).
 *
 * @throws SluiceError `UPSTREAM_UNAVAILABLE` naming a server that cannot be listed;
 *   `CONFIG_INVALID` when two tools of one server share an identifier.
 */
export async function buildLock(config: Config, options: { signed: boolean }): Promise<LockFile> {
  const names = Object.keys(config.servers)
  const raw = rawServerEntries(config)
  // A server's `timeoutMs` is for its calls; starting it (npx, a cold Node process) gets at
  // least as long as `sluice serve` gives it, or a server with a short timeout cannot be locked.
  const startMs = (name: string) =>
    Math.max(CONNECT_TIMEOUT_MS, config.servers[name]?.timeoutMs ?? config.limits.callTimeoutMs)
  const upstreams = new UpstreamSet(config.servers, {
    callTimeoutMs: config.limits.callTimeoutMs,
    perServer: (name) => {
      const sessionHeaders = staticSessionHeaders(config.servers[name]!, config.baseDir)
      return { connectTimeoutMs: startMs(name), ...(sessionHeaders ? { sessionHeaders } : {}) }
    },
  })
  try {
    const snapshot: Parameters<typeof createLock>[0] = {}
    const collisions: string[] = []
    for (const name of names) {
      const upstream = upstreams.get(name)!
      let tools: ToolDefinition[]
      try {
        // The first listing also waits for the start, so it gets the start's time too.
        tools = await upstream.listTools({ timeoutMs: startMs(name) })
      } catch (cause) {
        throw new SluiceError(
          'UPSTREAM_UNAVAILABLE',
          `server ${name}: cannot list tools: ${(cause as Error).message}`,
        )
      }
      for (const collision of identifierCollisions(tools.map((t) => t.name))) {
        collisions.push(
          `servers.${name}: ${describeCollision(name, collision)}; a lock cannot pin both (rename one upstream, or remove the server)`,
        )
      }
      const server = config.servers[name]!
      const source = portableSource(server, raw[name], config.baseDir)
      snapshot[name] = {
        source,
        serverInfo: upstream.health().serverInfo,
        tools,
        secrets: secretsOf(server, isSecretHeader),
        ...(server.origin ? { origin: server.origin } : {}),
      }
    }
    // Pinning them would only move the refusal to the next start: say it now, write nothing.
    if (collisions.length > 0) {
      throw new SluiceError(
        'CONFIG_INVALID',
        `invalid config ${config.file ?? '<inline>'}: ${collisions.join('; ')}`,
        { details: { file: config.file, problems: collisions } },
      )
    }
    return createLock(snapshot, { signed: options.signed })
  } finally {
    await upstreams.close()
  }
}

/** The lock the config points at, verified as `sluice serve` would; absent: undefined. */
export async function currentLock(
  config: Config,
  out?: string,
): Promise<{ path: string; lock?: LockFile }> {
  const path = lockPath(config, out)
  const exists = await readFile(path, 'utf8').then(
    () => true,
    () => false,
  )
  if (!exists) return { path }
  const publicKeyFile = config.lock?.publicKeyFile
  return { path, lock: await readLock(path, publicKeyFile ? { publicKeyFile } : {}) }
}

export const lockCommand: Command = {
  name: 'lock',
  summary: 'Pin the live tool definitions of every configured server into a lock file',
  usage:
    'sluice lock [--config FILE] [--out FILE] [--sign PRIVATE_JWK_FILE] [--diff [--format md|json]]',
  description:
    'Starts every configured server, lists its tools and writes their definitions, sha256 hashes and risk scores to the lock file (lock.file in the config, or --out), optionally signed as a JWS with --sign. A tool whose live definition later differs from its pin is quarantined until it is locked again. With --diff, writes nothing and prints what would change against the current lock (as sluice registry diff does), exit 1 when something would, 3 when the diff could not be made.',
  examples: [
    'sluice lock --config examples/demo/sluice.yaml',
    'sluice lock --config sluice.yaml --sign keys/lock.private.jwk.json',
    'sluice lock --config sluice.yaml --diff --format json',
  ],
  options: {
    config: { type: 'string', short: 'c' },
    out: { type: 'string', short: 'o' },
    sign: { type: 'string' },
    diff: { type: 'boolean' },
    format: { type: 'string' },
  },
  async run({ values }) {
    const config = loadConfig(values.config as string | undefined)
    if (values.diff) {
      const { reviewDiff } = await import('./registry.js')
      return reviewDiff(config, {
        ...(values.out ? { out: values.out as string } : {}),
        ...(values.format ? { format: values.format as string } : {}),
      })
    }
    if (values.format) throw usage('--format goes with --diff')
    const names = Object.keys(config.servers)
    if (names.length === 0) throw usage('the config has no servers to lock')
    const lock = await buildLock(config, { signed: Boolean(values.sign) })
    const path = lockPath(config, values.out as string | undefined)
    await writeLock(
      path,
      lock,
      values.sign ? { signingKeyFile: resolve(values.sign as string) } : {},
    )
    const count = Object.values(lock.servers).reduce((n, s) => n + Object.keys(s.tools).length, 0)
    process.stderr.write(
      `pinned ${count} tools of ${names.length} servers in ${path}${values.sign ? ' (signed)' : ''}\n`,
    )
    return 0
  },
}

/** The files `renderBindings` writes, by name inside the output folder. */
export const BINDINGS_FILES = Object.freeze({
  declarations: 'tools.d.ts',
  coverage: 'coverage.json',
  readme: 'README.md',
})

/** What `coverage.json` holds: totals, per server, and every problem the schemas caused. */
export interface BindingsReport {
  pins: string
  tools: number
  typedOutputs: number
  servers: Record<
    string,
    {
      server: { name: string; version: string }
      tools: number
      typedOutputs: number
      unknownOutputs: string[]
    }
  >
  problems: BindingProblem[]
}

/**
 * A digest of what the lock pins (server → tool → hash): it changes when a pin changes, not
 * when the lock is merely regenerated, so committed bindings only diff when the tools do.
 */
export function pinsDigest(lock: LockFile): string {
  const pins: Record<string, Record<string, string>> = {}
  for (const [server, entry] of Object.entries(lock.servers)) {
    pins[server] = Object.fromEntries(
      Object.entries(entry.tools).map(([name, tool]) => [name, tool.hash]),
    )
  }
  return `sha256:${createHash('sha256').update(canonicalJson(pins)).digest('hex')}`
}

function bindingTools(server: string, entry: LockFile['servers'][string]): BindingTool[] {
  return Object.values(entry.tools)
    .map((t) => t.definition)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((definition) => {
      const ident = sanitizeIdentifier(definition.name)
      return ident === undefined ? [] : [{ server, name: definition.name, ident, definition }]
    })
}

function readme(digest: string, servers: string[]): string {
  return `<!-- generated by \`sluice bindings\`; do not edit. -->
# tool-bindings

TypeScript declarations of the tools pinned in the lock file, generated by \`sluice bindings\`
from the lock alone (no live server): the types model code is written and type-checked against.

- \`${BINDINGS_FILES.declarations}\`: one global script declaring \`tools.<server>.<tool>(args)\` for every
  pinned server (${servers.join(', ')}), inputs and outputs typed from the JSON Schemas.
  One file, because each server is a member of the one global \`tools\`.
- \`${BINDINGS_FILES.coverage}\`: per server, how many tools have typed results and which still return
  \`unknown\` (no \`outputSchema\`), and every schema construct the types could not express.

Pins: \`${digest}\`.

Regenerate after \`sluice lock\` (CI runs the check and fails on any difference):

\`\`\`sh
npm run build
node dist/src/main.js lock --config examples/demo/sluice.yaml        # re-pin (live servers)
node dist/src/main.js bindings --config examples/demo/sluice.yaml --out tool-bindings
node dist/src/main.js bindings --config examples/demo/sluice.yaml --out tool-bindings --check
\`\`\`

\`test/types/\` compiles sample model programs against \`${BINDINGS_FILES.declarations}\` (\`npm run typecheck\`).
`
}

/**
 * Renders the bindings of a lock: one combined `tools.d.ts` (every server is a member of the
 * single global `tools`, so per-server files would redeclare it), `coverage.json` and a README.
 */
export function renderBindings(lock: LockFile): {
  files: Map<string, string>
  problems: BindingProblem[]
} {
  const names = Object.keys(lock.servers).sort()
  const tools = names.flatMap((server) => bindingTools(server, lock.servers[server]!))
  const digest = pinsDigest(lock)
  const header = [
    'Tools pinned in the lock file:',
    ...names.map((name) => {
      const entry = lock.servers[name]!
      const origin = entry.origin ? ` (from ${entry.origin.name}@${entry.origin.version})` : ''
      return `  ${name}: ${entry.server.name} ${entry.server.version}${origin}, ${Object.keys(entry.tools).length} tools`
    }),
    `pins: ${digest}`,
  ].join('\n')
  const rendered = renderBindingsFile(tools, { header })
  const servers: BindingsReport['servers'] = {}
  for (const name of names) {
    const entry = lock.servers[name]!
    const coverage: BindingsCoverage = generateDeclarations(bindingTools(name, entry)).coverage
    servers[name] = { server: entry.server, ...coverage }
  }
  const report: BindingsReport = {
    pins: digest,
    tools: rendered.coverage.tools,
    typedOutputs: rendered.coverage.typedOutputs,
    servers,
    problems: rendered.problems,
  }
  const files = new Map<string, string>([
    [BINDINGS_FILES.declarations, rendered.text],
    [BINDINGS_FILES.coverage, `${JSON.stringify(report, null, 2)}\n`],
    [BINDINGS_FILES.readme, readme(digest, names)],
  ])
  return { files, problems: rendered.problems }
}

/** Files a previous layout may have left in the output folder (they would redeclare `tools`). */
async function strayFiles(out: string, expected: ReadonlySet<string>): Promise<string[]> {
  const entries = await readdir(out).catch(() => [] as string[])
  return entries
    .filter((name) => (name.endsWith('.d.ts') || name.endsWith('.json')) && !expected.has(name))
    .map((name) => join(out, name))
}

export const bindingsCommand: Command = {
  name: 'bindings',
  summary: 'Generate TypeScript bindings from the lock file (no live server needed)',
  usage: 'sluice bindings [--config FILE] [--lock FILE] [--out DIR] [--check]',
  description:
    'Writes one .d.ts file per server (and a manifest) from the pinned definitions in the lock file; no server is started. With --check, writes nothing and exits 1 if the folder differs from what would be written.',
  examples: [
    'sluice bindings --config examples/demo/sluice.yaml --out tool-bindings',
    'sluice bindings --config examples/demo/sluice.yaml --check',
  ],
  options: {
    config: { type: 'string', short: 'c' },
    lock: { type: 'string' },
    out: { type: 'string', short: 'o', default: 'tool-bindings' },
    check: { type: 'boolean' },
  },
  async run({ values }) {
    const config = loadConfig(values.config as string | undefined)
    const path = values.lock ? resolve(values.lock as string) : config.lock?.file
    if (!path)
      throw usage(
        'no lock file: pass --lock FILE or set lock.file in the config (create one with `sluice lock`)',
      )
    const publicKeyFile = config.lock?.publicKeyFile
    const lock = await readLock(path, publicKeyFile ? { publicKeyFile } : {})
    const out = resolve(values.out as string)
    const { files, problems } = renderBindings(lock)
    for (const p of problems) {
      process.stderr.write(
        `${p.severity}: ${p.code} ${p.tool}${p.pointer ? ` ${p.pointer}` : ''}: ${p.message}\n`,
      )
    }
    const stale: string[] = []
    for (const [name, text] of files) {
      const target = join(out, name)
      if (values.check) {
        const current = await readFile(target, 'utf8').catch(() => undefined)
        if (current !== text) stale.push(current === undefined ? `${target} (missing)` : target)
      } else {
        await mkdir(dirname(target), { recursive: true })
        await writeFile(target, text)
      }
    }
    const stray = await strayFiles(out, new Set(files.keys()))
    // Paths inside the working folder are shown relative to it (stable in CI logs), others absolute.
    const shown = (p: string): string => {
      const rel = relative(process.cwd(), p)
      return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? p : rel
    }
    if (values.check) {
      stale.push(...stray.map((p) => `${p} (not generated; remove it)`))
      if (stale.length > 0) {
        process.stderr.write(
          `bindings are stale; run \`sluice bindings --out ${shown(out)}\`:\n  ${stale.map(shown).join('\n  ')}\n`,
        )
        return 1
      }
      process.stderr.write(`bindings in ${shown(out)} match ${shown(path)}\n`)
      return 0
    }
    for (const p of stray)
      process.stderr.write(`warning: ${shown(p)} is not generated by sluice bindings; remove it\n`)
    process.stderr.write(`wrote ${files.size} files to ${shown(out)}\n`)
    return 0
  },
}
