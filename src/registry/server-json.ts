/**
 * The MCP Registry's `server.json` (schema 2025-12-11) and the v0.1 read API's response shapes,
 * as zod schemas of the fields sluice reads. No npm package publishes the official JSON Schema,
 * so these follow its constraints by hand: the name pattern and lengths, a description of 1 to
 * 100 characters, exact versions (no ranges, no "latest" for a package), remote URLs that start
 * with http(s)://. Unknown keys pass, as the official schema lets them.
 *
 * @module
 */
import { z } from 'zod'

/** The `$schema` URL of the format these schemas follow. */
export const SERVER_JSON_SCHEMA_URL =
  'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json'

/** `namespace/name` in reverse DNS, exactly one slash. */
export const REGISTRY_NAME_PATTERN = /^[a-zA-Z0-9.-]+\/[a-zA-Z0-9._-]+$/

// What the schema calls a version range: ^1, ~1, >=1, 1.x, 1.*, and spaces or `||` between them.
const VERSION_RANGE = /^[\^~<>=]|(^|\.)[x*X](\.|$)|\s|\|\|/

const exactVersion = z
  .string()
  .min(1)
  .max(255)
  .refine((v) => !VERSION_RANGE.test(v), 'expected an exact version, not a range')

const input = {
  description: z.string().optional(),
  isRequired: z.boolean().optional(),
  format: z.enum(['string', 'number', 'boolean', 'filepath']).optional(),
  value: z.string().optional(),
  isSecret: z.boolean().optional(),
  default: z.string().optional(),
  placeholder: z.string().optional(),
  choices: z.array(z.string()).optional(),
}
const inputSchema = z.looseObject(input)
const inputWithVariables = { ...input, variables: z.record(z.string(), inputSchema).optional() }

export const keyValueInputSchema = z.looseObject({
  ...inputWithVariables,
  name: z.string().min(1),
})

const positionalArgumentSchema = z
  .looseObject({
    ...inputWithVariables,
    type: z.literal('positional'),
    valueHint: z.string().optional(),
    isRepeated: z.boolean().optional(),
  })
  .refine((a) => a.value !== undefined || a.valueHint !== undefined, {
    message: 'a positional argument needs a value or a valueHint',
  })

const namedArgumentSchema = z.looseObject({
  ...inputWithVariables,
  type: z.literal('named'),
  name: z.string().min(1),
  isRepeated: z.boolean().optional(),
})

export const argumentSchema = z.discriminatedUnion('type', [
  positionalArgumentSchema,
  namedArgumentSchema,
])

const TEMPLATE_URL = /^https?:\/\/\S+$/
const localTransportSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('stdio') }),
  z.looseObject({
    type: z.literal('streamable-http'),
    url: z.string(),
    headers: z.array(keyValueInputSchema).optional(),
  }),
  z.looseObject({
    type: z.literal('sse'),
    url: z.string(),
    headers: z.array(keyValueInputSchema).optional(),
  }),
])

export const packageSchema = z.looseObject({
  registryType: z.string().min(1),
  registryBaseUrl: z.url().optional(),
  identifier: z.string().min(1),
  version: exactVersion
    .refine((v) => v !== 'latest', 'expected an exact version, not "latest"')
    .optional(),
  fileSha256: z
    .string()
    .regex(/^[a-f0-9]{64}$/, 'expected 64 lowercase hex digits')
    .optional(),
  runtimeHint: z.string().optional(),
  transport: localTransportSchema,
  runtimeArguments: z.array(argumentSchema).optional(),
  packageArguments: z.array(argumentSchema).optional(),
  environmentVariables: z.array(keyValueInputSchema).optional(),
})

export const remoteSchema = z.looseObject({
  type: z.enum(['streamable-http', 'sse']),
  url: z.string().regex(TEMPLATE_URL, 'expected a URL that starts with http:// or https://'),
  headers: z.array(keyValueInputSchema).optional(),
  variables: z.record(z.string(), inputSchema).optional(),
})

export const serverDetailSchema = z.looseObject({
  $schema: z.string().optional(),
  name: z
    .string()
    .min(3)
    .max(200)
    .regex(
      REGISTRY_NAME_PATTERN,
      'expected namespace/name in reverse DNS (io.github.acme/weather)',
    ),
  description: z.string().min(1).max(100),
  title: z.string().min(1).max(100).optional(),
  version: exactVersion,
  websiteUrl: z.string().optional(),
  repository: z.looseObject({ url: z.string(), source: z.string() }).optional(),
  packages: z.array(packageSchema).optional(),
  remotes: z.array(remoteSchema).optional(),
})

const OFFICIAL_META = 'io.modelcontextprotocol.registry/official'

export const serverResponseSchema = z.looseObject({
  // Validated on its own, so a bad entry is reported by its name rather than as a bad page.
  server: z.unknown(),
  _meta: z
    .looseObject({
      [OFFICIAL_META]: z
        .looseObject({
          status: z.enum(['active', 'deprecated', 'deleted']).optional(),
          statusMessage: z.string().optional(),
          publishedAt: z.string().optional(),
          isLatest: z.boolean().optional(),
        })
        .optional(),
    })
    .optional(),
})

export const serverListSchema = z.looseObject({
  servers: z.array(serverResponseSchema),
  metadata: z
    .looseObject({
      nextCursor: z.string().nullable().optional(),
      count: z.number().optional(),
    })
    .optional(),
})

export type ServerDetail = z.infer<typeof serverDetailSchema>
export type RegistryPackage = z.infer<typeof packageSchema>
export type RegistryRemote = z.infer<typeof remoteSchema>
export type RegistryArgument = z.infer<typeof argumentSchema>
export type KeyValueInput = z.infer<typeof keyValueInputSchema>
export type RegistryInput = z.infer<typeof inputSchema>

/** Lifecycle status of one version, as the registry reports it (absent: active). */
export type EntryStatus = 'active' | 'deprecated' | 'deleted'

/** One version of one entry: its `server.json`, validated, and what the registry says of it. */
export interface RegistryEntry {
  server: ServerDetail
  status: EntryStatus
  statusMessage?: string
  isLatest?: boolean
}

/** The status and latest flag of a response's official metadata. */
export function officialMeta(response: z.infer<typeof serverResponseSchema>): {
  status: EntryStatus
  statusMessage?: string
  isLatest?: boolean
} {
  const meta = response._meta?.[OFFICIAL_META]
  return {
    status: meta?.status ?? 'active',
    ...(meta?.statusMessage === undefined ? {} : { statusMessage: meta.statusMessage }),
    ...(meta?.isLatest === undefined ? {} : { isLatest: meta.isLatest }),
  }
}

/** zod issues as `path: message` lines. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const path = issue.path
      .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
      .join('')
    return `${path === '' ? '(top level)' : path}: ${issue.message.replace(/^Invalid input: /, '')}`
  })
}
