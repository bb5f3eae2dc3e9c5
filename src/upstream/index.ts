/**
 * MCP clients to the upstream servers (stdio, Streamable HTTP, HTTP+SSE): lazy connect, respawn and
 * reconnect with capped backoff, per-call timeouts, cancellation sent upstream, per-call HTTP
 * headers, sanitised errors. Only this module and the gateway import the MCP SDK.
 *
 * Errors: `TOOL_ERROR` (crash mid-call, malformed message, JSON-RPC error with
 * `details.jsonRpcCode`: -32602 reads `invalid params: …`), `TOOL_TIMEOUT`, `CANCELLED`,
 * `UPSTREAM_UNAVAILABLE`. An upstream `isError` result is returned, not thrown.
 *
 * @module
 */
export {
  Upstream,
  JSONRPC_INVALID_PARAMS,
  DEFAULT_STDERR_BYTES,
  DEFAULT_PROBE_TIMEOUT_MS,
  MAX_TOOL_LIST_PAGES,
} from './upstream.js'
export type {
  UpstreamOptions,
  UpstreamHealth,
  UpstreamState,
  UpstreamLogger,
  CallOptions,
  ListOptions,
  UpstreamProgress,
  ToolCallResult,
  ToolResultContent,
} from './upstream.js'
export { UpstreamSet, DEFAULT_CLIENT_INFO } from './set.js'
export type { UpstreamSetOptions } from './set.js'
export { backoffDelayMs, DEFAULT_INITIAL_BACKOFF_MS, DEFAULT_MAX_BACKOFF_MS } from './backoff.js'
export type { BackoffOptions } from './backoff.js'
export { sanitizeMessage, MAX_UPSTREAM_MESSAGE_CHARS } from './sanitize.js'
export {
  getPrompt,
  listPrompts,
  listResources,
  listResourceTemplates,
  readResource,
} from './prompts-resources.js'
export type {
  GetPromptResult,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplate,
} from './prompts-resources.js'
