/**
 * `sluice registry sync` imports servers from an MCP Registry (v0.1 read API) into `servers:` of
 * the config; `sluice registry diff` shows what changed against the signed lock, for review.
 *
 * Sync reads and checks everything before it writes anything: a registry that is down, an entry
 * that fails the schema or cannot run here, a name the registry does not know, a variable the
 * config does not fill, each stops it with the entry's full name and leaves every file as it
 * was. The config is edited with yaml's Document API, so the user's comments and key order stay,
 * and replaced atomically (temp file + rename).
 *
 * @module
 */
import { readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { Document, isMap, parseDocument } from 'yaml'
import type { z } from 'zod'
import {
  loadConfig,
  type Config,
  DEFAULT_REGISTRY_TIMEOUT_MS,
  REGISTRY_SERVER_PATTERN,
  registrySchema,
  serverSchema,
  type RegistryConfig,
} from '../config/index.js'
import { isSluiceError, SluiceError } from '../errors.js'
import {
  diffLocks,
  renderDiffMarkdown,
  importEntry,
  parseEntrySpec,
  RegistryClient,
  type ImportedServer,
  type RegistryEntry,
} from '../registry/index.js'
import { exitCodeOf, usage, type Command } from './index.js'
import { buildLock, currentLock } from './lock.js'

/** The config file `sync` edits when none is given. */
export const DEFAULT_CONFIG_FILE = 'sluice.yaml'

function configError(file: string, problems: string[]): SluiceError {
  return new SluiceError('CONFIG_INVALID', `invalid config ${file}: ${problems.join('; ')}`, {
    details: { file, problems },
  })
}

function issuesAt(prefix: string, error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].join('.')
    if (issue.code === 'unrecognized_keys')
      return `${path}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
    return `${path}: ${issue.message.replace(/^Invalid input: /, '')}`
  })
}

/** The config file as a yaml Document (a new, empty one when the file does not exist yet). */
async function readDocument(file: string): Promise<{ doc: Document; exists: boolean }> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT')
      return { doc: new Document({}), exists: false }
    throw configError(file, ['cannot read file'])
  }
  const doc = parseDocument(text, { uniqueKeys: true })
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!
    const pos = e.linePos?.[0]
    throw configError(file, [
      `${pos ? `line ${pos.line}, column ${pos.col}` : '(parse)'}: not valid YAML or JSON: ${e.message.split('\n')[0]}`,
    ])
  }
  if (doc.contents !== null && !isMap(doc.contents))
    throw configError(file, ['(top level): expected a map'])
  return { doc, exists: true }
}

/** The `registry:` block, checked on its own: the rest of the file is not sync's business. */
function registryBlock(doc: Document, file: string): RegistryConfig | undefined {
  const raw =
    doc.get('registry') === undefined ? undefined : (doc.toJS() as Record<string, unknown>).registry
  if (raw === undefined || raw === null) return undefined
  const parsed = registrySchema.safeParse(raw)
  if (!parsed.success) throw configError(file, issuesAt('registry', parsed.error))
  return parsed.data
}

/** Writes `text` over `file` atomically, keeping its mode. */
async function replaceFile(file: string, text: string): Promise<void> {
  const mode = await stat(file).then(
    (s) => s.mode & 0o777,
    () => 0o644,
  )
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`)
  try {
    await writeFile(temp, text, { mode })
    await rename(temp, file)
  } catch (cause) {
    await unlink(temp).catch(() => undefined)
    throw cause
  }
}

export interface SyncOutcome {
  file: string
  imported: ImportedServer[]
  warnings: string[]
}

/**
 * Imports registry entries into the config file. Nothing is written unless every entry
 * resolved, validated and mapped.
 */
export async function syncRegistry(options: {
  file: string
  registry?: string
  servers?: readonly string[]
  fetch?: typeof fetch
}): Promise<SyncOutcome> {
  const file = resolve(options.file)
  const { doc } = await readDocument(file)
  const block = registryBlock(doc, file)
  const url = options.registry ?? block?.url
  if (url === undefined)
    throw usage('no registry: pass --registry URL or set registry.url in the config')
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol))
    throw usage(`--registry: expected an http or https URL, got ${JSON.stringify(url)}`)
  const specs =
    options.servers !== undefined && options.servers.length > 0 ? options.servers : block?.servers
  for (const spec of specs ?? []) {
    if (!REGISTRY_SERVER_PATTERN.test(spec))
      throw usage(
        `--server ${JSON.stringify(spec)}: expected NAME or NAME@VERSION (io.github.acme/weather@1.1.0)`,
      )
  }
  const client = new RegistryClient(url, {
    timeoutMs: block?.timeoutMs ?? DEFAULT_REGISTRY_TIMEOUT_MS,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  })
  // One at a time: the first bad name is the one reported, whatever the network's timing.
  const entries: RegistryEntry[] = []
  if (specs === undefined) entries.push(...(await client.latestAll()))
  else for (const spec of specs) entries.push(await client.resolve(parseEntrySpec(spec)))
  const warnings = entries
    .filter((e) => e.status === 'deprecated')
    .map(
      (e) =>
        `${e.server.name}@${e.server.version} is deprecated${e.statusMessage ? `: ${e.statusMessage}` : ''}; imported because it was named`,
    )
  const imported = entries.map((entry) =>
    importEntry(entry, {
      registry: client.url,
      ...(block?.variables[entry.server.name]
        ? { variables: block.variables[entry.server.name] }
        : {}),
      ...(block?.secrets[entry.server.name] ? { secrets: block.secrets[entry.server.name] } : {}),
    }),
  )
  checkKeys(imported, doc, file)
  for (const server of imported) {
    // A mapping that the config schema would refuse is sluice's bug, not the user's: say so now.
    const check = serverSchema.safeParse(server.entry)
    if (!check.success)
      throw new SluiceError(
        'INTERNAL',
        `registry entry ${server.name}@${server.version} maps to an invalid server entry: ${issuesAt(`servers.${server.key}`, check.error).join('; ')}`,
      )
  }
  const key = serversKey(doc)
  for (const server of imported) doc.setIn([key, server.key], doc.createNode(server.entry))
  const text = file.endsWith('.json')
    ? `${JSON.stringify(doc.toJS(), null, 2)}\n`
    : doc.toString({ flowCollectionPadding: false })
  await replaceFile(file, text)
  return { file, imported, warnings }
}

/** `servers` or the `mcpServers` alias, whichever the file uses. */
function serversKey(doc: Document): string {
  return doc.has('servers') || !doc.has('mcpServers') ? 'servers' : 'mcpServers'
}

/** Two entries cannot share a key, and an entry the user wrote by hand is never replaced. */
function checkKeys(imported: readonly ImportedServer[], doc: Document, file: string): void {
  const byKey = new Map<string, string>()
  for (const server of imported) {
    const other = byKey.get(server.key)
    if (other !== undefined && other !== server.name) {
      throw new SluiceError(
        'REGISTRY_INVALID',
        `registry entries ${other} and ${server.name} both become servers.${server.key}; import one of them`,
        {
          details: { key: server.key, names: [other, server.name] },
        },
      )
    }
    byKey.set(server.key, server.name)
  }
  const key = serversKey(doc)
  const existing = (doc.toJS() as Record<string, unknown> | null)?.[key]
  const servers =
    existing !== null && typeof existing === 'object'
      ? (existing as Record<string, { origin?: { name?: unknown } }>)
      : {}
  for (const server of imported) {
    const current = servers[server.key]
    if (current === undefined) continue
    const from = current?.origin?.name
    if (from !== server.name) {
      throw new SluiceError(
        'REGISTRY_INVALID',
        `registry entry ${server.name}@${server.version} would replace ${key}.${server.key} of ${file}, which ${typeof from === 'string' ? `was imported from ${from}` : 'was not imported from a registry'}; rename or remove that entry first`,
        { details: { key: server.key, name: server.name, file } },
      )
    }
  }
}

/**
 * Prints what the config's servers, listed live, would change against the lock in force:
 * Markdown (default) or JSON. Writes nothing. Exit 0 when nothing changed, 1 when something did.
 */
export async function reviewDiff(
  config: Config,
  options: { out?: string; format?: string },
): Promise<number> {
  const format = options.format ?? 'md'
  if (format !== 'md' && format !== 'json')
    throw usage(`--format: expected md or json, got ${JSON.stringify(format)}`)
  const { path, lock } = await currentLock(config, options.out)
  // The lock in force is checked first: a diff against a lock that does not verify means nothing.
  let next: Awaited<ReturnType<typeof buildLock>>
  try {
    next = await buildLock(config, { signed: config.lock?.publicKeyFile !== undefined })
  } catch (cause) {
    // Exit 1 means "changed": a diff that could not be made must not read as one.
    if (isSluiceError(cause) && exitCodeOf(cause.code) === 2) throw cause
    throw new SluiceError(
      'DIFF_UNAVAILABLE',
      `no diff against ${path}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    )
  }
  const diff = diffLocks(lock, next)
  process.stdout.write(
    format === 'json'
      ? `${JSON.stringify({ lock: path, ...diff }, null, 2)}\n`
      : renderDiffMarkdown(diff, path),
  )
  return diff.changed ? 1 : 0
}

export const registryCommand: Command = {
  name: 'registry',
  summary:
    'Import servers from an MCP Registry (registry sync) and review the changes (registry diff)',
  usage:
    'sluice registry sync [--config FILE] [--registry URL] [--server NAME[@VERSION]]... | sluice registry diff [--config FILE] [--format md|json]',
  description:
    'registry sync reads the MCP Registry v0.1 read API (the list with cursor pagination, one entry\'s versions), validates each entry against the server.json schema (2025-12-11) and writes it into servers: of the config (default sluice.yaml), keyed by the last segment of its name: npm packages as a pinned npx command, pypi as uvx, oci as docker, remotes as a url entry, secrets as credential grants with valueFrom, never values. Without --server (or registry.servers) the whole registry is imported; "latest" skips deprecated versions and is recorded as the exact version in origin. Nothing is written unless every entry imports. Exit 0 when written, 1 when the registry cannot be read, 2 for a bad entry, name or config. registry diff starts every configured server, lists its tools and prints what would change against the lock in force (verified with lock.publicKeyFile when set): servers and tools added and removed, changed descriptions, input schemas widened or narrowed, annotations changed, new secrets, risk scores; Markdown for a pull request or --format json for CI. It never writes; exit 0 when nothing changed, 1 when something did, 3 when the diff could not be made (a server that does not start or list), 2 for a bad config or lock.',
  examples: [
    'sluice registry sync --config sluice.yaml --registry https://registry.example.com --server io.github.acme/weather@1.1.0',
    'sluice registry sync --config sluice.yaml   # registry: { url, servers } from the config',
    'sluice registry diff --config sluice.yaml --format json',
  ],
  options: {
    config: { type: 'string', short: 'c' },
    registry: { type: 'string' },
    server: { type: 'string', multiple: true },
    format: { type: 'string' },
  },
  async run({ values, positionals }) {
    const [sub] = positionals
    if (sub === 'sync') {
      const outcome = await syncRegistry({
        file: (values.config as string | undefined) ?? DEFAULT_CONFIG_FILE,
        ...(values.registry ? { registry: values.registry as string } : {}),
        ...(values.server ? { servers: values.server as string[] } : {}),
      })
      for (const warning of outcome.warnings) process.stderr.write(`warning: ${warning}\n`)
      const width = Math.max(0, ...outcome.imported.map((s) => s.key.length))
      process.stderr.write(
        [
          `imported ${outcome.imported.length} server${outcome.imported.length === 1 ? '' : 's'} into ${outcome.file}:`,
          ...outcome.imported.map(
            (s) => `  ${s.key.padEnd(width)}  ${s.name}@${s.version}  (${s.via})`,
          ),
          'review with `sluice registry diff`, then pin with `sluice lock --sign KEY`',
          '',
        ].join('\n'),
      )
      return 0
    }
    if (sub === 'diff') {
      const config = loadConfig((values.config as string | undefined) ?? DEFAULT_CONFIG_FILE)
      return reviewDiff(config, values.format ? { format: values.format as string } : {})
    }
    throw usage('expected `registry sync` or `registry diff`')
  },
}
