/**
 * A reader of the MCP Registry v0.1 read API: the list (cursor pagination, `version=latest`),
 * one entry's versions, and one version. Every entry is validated against `server.json` before
 * it is returned; "latest" skips deprecated and deleted versions.
 *
 * Errors: `REGISTRY_UNAVAILABLE` (down, slow, an HTTP error, a body that is not the API's JSON),
 * `REGISTRY_INVALID` (an entry fails the schema, named by its full name), `REGISTRY_NOT_FOUND`
 * (no such entry, with a did-you-mean; no such version, with the list).
 *
 * @module
 */
import { SluiceError } from '../errors.js'
import { nearest } from '../text.js'
import {
  describeIssues,
  officialMeta,
  serverDetailSchema,
  serverListSchema,
  serverResponseSchema,
  type RegistryEntry,
} from './server-json.js'

/** The most bytes one response may have: a registry page is JSON text, never this large. */
export const MAX_REGISTRY_RESPONSE_BYTES = 16 * 1024 * 1024
/** Entries asked for per page (a registry may send fewer). */
export const REGISTRY_PAGE_LIMIT = 100
/** Pages read at most in one listing: a cursor that never ends is a broken registry. */
export const MAX_REGISTRY_PAGES = 1_000

export interface RegistryClientOptions {
  /** Time given to one request. */
  timeoutMs: number
  fetch?: typeof fetch
  /** `limit` sent with each list request. */
  pageLimit?: number
}

/** `NAME` or `NAME@VERSION`, split. */
export interface EntrySpec {
  name: string
  version?: string
}

export function parseEntrySpec(text: string): EntrySpec {
  const at = text.indexOf('@')
  return at < 0 ? { name: text } : { name: text.slice(0, at), version: text.slice(at + 1) }
}

type ServerResponse = ReturnType<typeof serverResponseSchema.parse>

export class RegistryClient {
  readonly #base: string
  readonly #options: RegistryClientOptions

  constructor(baseUrl: string, options: RegistryClientOptions) {
    // `https://r.example.com/` and `https://r.example.com` name the same registry.
    this.#base = baseUrl.replace(/\/+$/, '')
    this.#options = options
  }

  get url(): string {
    return this.#base
  }

  /** Every entry at its latest usable version (the whole registry). */
  async latestAll(): Promise<RegistryEntry[]> {
    const entries: RegistryEntry[] = []
    for (const response of await this.#listAll({ version: 'latest' })) {
      const { status } = officialMeta(response)
      const name = nameOf(response.server)
      // A registry may call a deprecated version "latest"; sluice never imports one unasked.
      if (status !== 'active' && name !== undefined) entries.push(await this.latest(name))
      else entries.push(this.#entry(response))
    }
    return entries
  }

  /** The newest version of `name` that is neither deprecated nor deleted. */
  async latest(name: string): Promise<RegistryEntry> {
    const versions = await this.#versions(name)
    const usable = versions.filter((v) => officialMeta(v).status === 'active')
    const chosen = usable.find((v) => officialMeta(v).isLatest === true) ?? usable[0]
    if (chosen === undefined) {
      throw new SluiceError(
        'REGISTRY_NOT_FOUND',
        `registry ${this.#base}: every version of ${name} is deprecated or deleted (${listVersions(versions)}); name one with ${name}@VERSION to import it anyway`,
        { details: { registry: this.#base, name } },
      )
    }
    return this.#named(name, this.#entry(chosen))
  }

  /** A registry that answers for another name than the one asked is not believed. */
  #named(name: string, entry: RegistryEntry): RegistryEntry {
    if (entry.server.name !== name) {
      throw new SluiceError(
        'REGISTRY_INVALID',
        `registry ${this.#base}: asked for ${name}, it answered with ${entry.server.name}@${entry.server.version}; refused`,
        { details: { registry: this.#base, name, answered: entry.server.name } },
      )
    }
    return entry
  }

  /** One exact version. A deprecated one is returned (it was asked for by name); a deleted one is not. */
  async version(name: string, version: string): Promise<RegistryEntry> {
    const path = `/v0.1/servers/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`
    const body = await this.#get(path, async () => {
      const versions = await this.#versions(name)
      return new SluiceError(
        'REGISTRY_NOT_FOUND',
        `registry ${this.#base}: ${name} has no version ${version} (versions: ${listVersions(versions)})`,
        { details: { registry: this.#base, name, version } },
      )
    })
    const response = this.#shape(serverResponseSchema, body, path)
    const entry = this.#named(name, this.#entry(response))
    if (entry.status === 'deleted') {
      throw new SluiceError(
        'REGISTRY_NOT_FOUND',
        `registry ${this.#base}: version ${version} of ${name} was deleted`,
        { details: { registry: this.#base, name, version } },
      )
    }
    return entry
  }

  /** `resolve({ name })` is `latest(name)`; with a version, that version. */
  resolve(spec: EntrySpec): Promise<RegistryEntry> {
    return spec.version === undefined || spec.version === 'latest'
      ? this.latest(spec.name)
      : this.version(spec.name, spec.version)
  }

  async #versions(name: string): Promise<ServerResponse[]> {
    const path = `/v0.1/servers/${encodeURIComponent(name)}/versions`
    const body = await this.#get(path, async () => {
      const names = (await this.#listAll({ version: 'latest' }))
        .map((r) => nameOf(r.server))
        .filter((n): n is string => n !== undefined)
      const suggests = nearest(name, names) ?? nearest(name.split('/').pop() ?? name, names)
      return new SluiceError(
        'REGISTRY_NOT_FOUND',
        `registry ${this.#base} has no server ${name}${suggests === undefined ? '' : ` (did you mean ${suggests}?)`}`,
        { details: { registry: this.#base, name, ...(suggests ? { suggests } : {}) } },
      )
    })
    const list = this.#shape(serverListSchema, body, path).servers
    // The API lists newest first; a registry that says when each was published is sorted by it.
    return list
      .map((response, index) => ({ response, index }))
      .sort((a, b) => {
        const pa = publishedAt(a.response)
        const pb = publishedAt(b.response)
        return pa !== undefined && pb !== undefined && pa !== pb
          ? pa < pb
            ? 1
            : -1
          : a.index - b.index
      })
      .map((x) => x.response)
  }

  async #listAll(query: { version?: string }): Promise<ServerResponse[]> {
    const out: ServerResponse[] = []
    const seen = new Set<string>()
    let cursor: string | undefined
    for (let page = 0; page < MAX_REGISTRY_PAGES; page++) {
      const params = new URLSearchParams()
      if (cursor !== undefined) params.set('cursor', cursor)
      params.set('limit', String(this.#options.pageLimit ?? REGISTRY_PAGE_LIMIT))
      if (query.version !== undefined) params.set('version', query.version)
      const path = `/v0.1/servers?${params}`
      const list = this.#shape(serverListSchema, await this.#get(path), path)
      out.push(...list.servers)
      const next = list.metadata?.nextCursor
      if (next === undefined || next === null || next === '') return out
      if (seen.has(next)) {
        throw new SluiceError(
          'REGISTRY_UNAVAILABLE',
          `registry ${this.#base}: the list repeats cursor ${JSON.stringify(next.slice(0, 80))}; stopped after ${page + 1} pages`,
          { details: { registry: this.#base } },
        )
      }
      seen.add(next)
      cursor = next
    }
    throw new SluiceError(
      'REGISTRY_UNAVAILABLE',
      `registry ${this.#base}: the list did not end within ${MAX_REGISTRY_PAGES} pages`,
      { details: { registry: this.#base } },
    )
  }

  /** Validates one entry's `server.json`; the error names the entry by its full name. */
  #entry(response: ServerResponse): RegistryEntry {
    const parsed = serverDetailSchema.safeParse(response.server)
    const meta = officialMeta(response)
    if (!parsed.success) {
      const name = nameOf(response.server) ?? '(an entry without a name)'
      const version = versionOf(response.server)
      throw new SluiceError(
        'REGISTRY_INVALID',
        `registry entry ${name}${version === undefined ? '' : `@${version}`} fails the server.json schema (2025-12-11): ${describeIssues(parsed.error).join('; ')}`,
        { details: { registry: this.#base, name, version } },
      )
    }
    return { server: parsed.data, ...meta }
  }

  #shape<T>(
    schema: {
      safeParse(
        data: unknown,
      ): { success: true; data: T } | { success: false; error: { issues: unknown[] } }
    },
    body: unknown,
    path: string,
  ): T {
    const parsed = schema.safeParse(body)
    if (!parsed.success) {
      throw new SluiceError(
        'REGISTRY_UNAVAILABLE',
        `registry ${this.#base}${path.split('?')[0]}: the answer is not a v0.1 registry response`,
        { details: { registry: this.#base, path } },
      )
    }
    return parsed.data
  }

  /** GET one path as JSON. A 404 becomes what `notFound` says, when given. */
  async #get(path: string, notFound?: () => Promise<SluiceError>): Promise<unknown> {
    const url = `${this.#base}${path}`
    const shown = `${this.#base}${path.split('?')[0]}`
    const fetcher = this.#options.fetch ?? fetch
    let response: Response
    try {
      response = await fetcher(url, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      })
    } catch (cause) {
      const timedOut = (cause as Error).name === 'TimeoutError'
      const code = ((cause as { cause?: { code?: string } }).cause?.code ?? '') as string
      const why = timedOut
        ? `no answer within ${this.#options.timeoutMs} ms`
        : code !== ''
          ? `cannot connect (${code})`
          : `cannot connect (${(cause as Error).message})`
      throw new SluiceError('REGISTRY_UNAVAILABLE', `registry ${shown}: ${why}`, {
        cause,
        details: { registry: this.#base },
      })
    }
    if (response.status === 404 && notFound !== undefined) {
      await response.body?.cancel()
      throw await notFound()
    }
    if (!response.ok) {
      await response.body?.cancel()
      throw new SluiceError(
        'REGISTRY_UNAVAILABLE',
        `registry ${shown}: HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
        { details: { registry: this.#base, status: response.status } },
      )
    }
    const text = await readCapped(response, MAX_REGISTRY_RESPONSE_BYTES, shown)
    try {
      return JSON.parse(text) as unknown
    } catch (cause) {
      throw new SluiceError('REGISTRY_UNAVAILABLE', `registry ${shown}: the answer is not JSON`, {
        cause,
        details: { registry: this.#base },
      })
    }
  }
}

async function readCapped(response: Response, maxBytes: number, shown: string): Promise<string> {
  const reader = response.body?.getReader()
  if (reader === undefined) return ''
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      total += value.byteLength
      if (total > maxBytes) {
        throw new SluiceError(
          'REGISTRY_UNAVAILABLE',
          `registry ${shown}: the answer is larger than ${maxBytes} bytes`,
        )
      }
      chunks.push(value)
    }
  } finally {
    if (total > maxBytes) await reader.cancel().catch(() => undefined)
    reader.releaseLock()
  }
  return Buffer.concat(chunks).toString('utf8')
}

function nameOf(server: unknown): string | undefined {
  const name = (server as { name?: unknown } | null)?.name
  return typeof name === 'string' ? name.slice(0, 200) : undefined
}

function versionOf(server: unknown): string | undefined {
  const version = (server as { version?: unknown } | null)?.version
  return typeof version === 'string' ? version.slice(0, 255) : undefined
}

function publishedAt(response: ServerResponse): string | undefined {
  return response._meta?.['io.modelcontextprotocol.registry/official']?.publishedAt
}

function listVersions(versions: readonly ServerResponse[]): string {
  if (versions.length === 0) return 'none'
  return versions
    .map((v) => {
      const { status } = officialMeta(v)
      return `${versionOf(v.server) ?? '?'}${status === 'active' ? '' : ` (${status})`}`
    })
    .join(', ')
}
