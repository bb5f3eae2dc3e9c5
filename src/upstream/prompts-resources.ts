/**
 * An upstream's prompts and resources, for the gateway's pass-through (`prompts/*`,
 * `resources/*`). Lists follow pagination up to {@link MAX_TOOL_LIST_PAGES} pages; a server
 * that did not announce the capability has none (no request is sent, so servers that answer
 * "method not found" loudly stay quiet).
 *
 * @module
 */
import {
  GetPromptResultSchema,
  ListPromptsResultSchema,
  ListResourcesResultSchema,
  ListResourceTemplatesResultSchema,
  ReadResourceResultSchema,
  type GetPromptResult,
  type Prompt,
  type ReadResourceResult,
  type Resource,
  type ResourceTemplate,
} from '@modelcontextprotocol/sdk/types.js'
import { SluiceError } from '../errors.js'
import { MAX_TOOL_LIST_PAGES, type CallOptions, type Upstream } from './upstream.js'

export type { GetPromptResult, Prompt, ReadResourceResult, Resource, ResourceTemplate }

type Paged<K extends string, T> = { [key in K]: T[] } & { nextCursor?: string | undefined }

async function listAll<K extends string, T>(
  upstream: Upstream,
  method: string,
  key: K,
  page: (cursor: string | undefined) => Promise<Paged<K, T>>,
): Promise<T[]> {
  const items: T[] = []
  let cursor: string | undefined
  for (let i = 0; i < MAX_TOOL_LIST_PAGES; i++) {
    const result = await page(cursor)
    items.push(...result[key])
    cursor = result.nextCursor
    if (cursor === undefined) return items
  }
  throw new SluiceError(
    'TOOL_ERROR',
    `upstream ${upstream.name} paginated ${method} beyond ${MAX_TOOL_LIST_PAGES} pages`,
  )
}

const cursorParams = (cursor: string | undefined) => (cursor === undefined ? {} : { cursor })

/** Every prompt of the server; `[]` when it has no `prompts` capability. */
export async function listPrompts(
  upstream: Upstream,
  options: CallOptions = {},
): Promise<Prompt[]> {
  if ((await upstream.capabilities(options)).prompts === undefined) return []
  return listAll(upstream, 'prompts/list', 'prompts', (cursor) =>
    upstream.request('prompts/list', cursorParams(cursor), ListPromptsResultSchema, options),
  )
}

/** Every resource of the server; `[]` when it has no `resources` capability. */
export async function listResources(
  upstream: Upstream,
  options: CallOptions = {},
): Promise<Resource[]> {
  if ((await upstream.capabilities(options)).resources === undefined) return []
  return listAll(upstream, 'resources/list', 'resources', (cursor) =>
    upstream.request('resources/list', cursorParams(cursor), ListResourcesResultSchema, options),
  )
}

/** Every resource template of the server; `[]` when it has no `resources` capability. */
export async function listResourceTemplates(
  upstream: Upstream,
  options: CallOptions = {},
): Promise<ResourceTemplate[]> {
  if ((await upstream.capabilities(options)).resources === undefined) return []
  return listAll(upstream, 'resources/templates/list', 'resourceTemplates', (cursor) =>
    upstream.request(
      'resources/templates/list',
      cursorParams(cursor),
      ListResourceTemplatesResultSchema,
      options,
    ),
  )
}

/** One prompt, rendered by the server with `args`. */
export function getPrompt(
  upstream: Upstream,
  name: string,
  args: Readonly<Record<string, string>>,
  options: CallOptions = {},
): Promise<GetPromptResult> {
  return upstream.request(
    'prompts/get',
    { name, arguments: { ...args } },
    GetPromptResultSchema,
    options,
  )
}

/** One resource's contents. */
export function readResource(
  upstream: Upstream,
  uri: string,
  options: CallOptions = {},
): Promise<ReadResourceResult> {
  return upstream.request('resources/read', { uri }, ReadResourceResultSchema, options)
}
