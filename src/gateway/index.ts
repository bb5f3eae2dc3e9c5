/**
 * gateway: the fastify app and MCP server (Streamable HTTP and stdio), the outer tools
 * `execute_code` and `search_tools` (and direct mode), edge checks, sessions and approval by
 * elicitation.
 *
 * @module
 */
export { buildApp, MCP_PATH, PRM_PATH, METRICS_CONTENT_TYPE } from './app.js'
export type { GatewayDeps } from './app.js'
export { listen } from './listen.js'
export type { ListenOptions } from './listen.js'
export { startStdio } from './stdio.js'
export type { StdioDeps, StdioGateway } from './stdio.js'
export { createMcpServer, directToolName, SERVER_NAME, SERVER_VERSION } from './mcp-server.js'
export type { McpServerOptions, RequestIdentity } from './mcp-server.js'
export { elicitationApprover, approvalMessage } from './approval.js'
export type { ApprovalOptions } from './approval.js'
export {
  EXECUTE_CODE,
  SEARCH_TOOLS,
  DEFAULT_SEARCH_LIMIT,
  MAX_SEARCH_LIMIT,
  toCallToolResult,
  renderExecutionText,
} from './render.js'
export { DEFAULT_SESSION_IDLE_MS, DEFAULT_MAX_SESSIONS } from './sessions.js'
export type {
  ApprovalAnswer,
  ApprovalHandler,
  ApprovalRequest,
  DirectCallResult,
  EngineHealth,
  ExecuteOptions,
  GatewayEngine,
  PassthroughEngine,
  SearchAnswer,
  SearchMatch,
} from './contracts.js'
