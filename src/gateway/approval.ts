/**
 * Human approval through MCP elicitation: when policy says `approve`, the engine calls the
 * handler built here, which asks the connected client (form mode, one boolean `approve` field)
 * on the stream of the `tools/call` request that triggered it. Every path that is not an
 * explicit "yes" is a refusal: decline, cancel, `approve: false`, a malformed answer, an error.
 *
 * @module
 */
import type { Server } from '@modelcontextprotocol/sdk/server/index.js'
import {
  ErrorCode,
  McpError,
  type ElicitRequestFormParams,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js'
import type { ApprovalHandler, ApprovalRequest } from './contracts.js'

export interface ApprovalOptions {
  /** How long the human has to answer; then the answer is `timeout`. */
  timeoutMs: number
  /** The `tools/call` request the question belongs to (keeps it on that request's stream). */
  relatedRequestId?: RequestId
  /** Aborts the question when the tool call itself is cancelled. */
  signal?: AbortSignal
}

/** The question as the human reads it. No argument values beyond the engine's redacted summary. */
export function approvalMessage(request: Omit<ApprovalRequest, 'index'>): string {
  return [
    `Allow the call ${request.tool}?`,
    `Arguments: ${request.argsSummary}`,
    // Policy reasons usually name their rule already; say it once.
    request.reason.includes(request.ruleId)
      ? `Policy: ${request.reason}`
      : `Rule ${request.ruleId}: ${request.reason}`,
  ].join('\n')
}

/** The form the human answers: one boolean, `approve`, false unless set (both eras). */
export const APPROVAL_SCHEMA: ElicitRequestFormParams['requestedSchema'] = {
  type: 'object',
  properties: {
    approve: {
      type: 'boolean',
      title: 'Approve',
      description: 'Allow this one tool call.',
      default: false,
    },
  },
  required: ['approve'],
}

/** Builds the approval handler for one `tools/call` request on `server`. */
export function elicitationApprover(server: Server, options: ApprovalOptions): ApprovalHandler {
  return async (request) => {
    // The SDK normalises a bare `elicitation: {}` (spec 2025-06-18) to `{ form: {} }`.
    if (server.getClientCapabilities()?.elicitation?.form === undefined) return 'unsupported'
    try {
      const answer = await server.elicitInput(
        { mode: 'form', message: approvalMessage(request), requestedSchema: APPROVAL_SCHEMA },
        {
          timeout: options.timeoutMs,
          ...(options.relatedRequestId === undefined
            ? {}
            : { relatedRequestId: options.relatedRequestId }),
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        },
      )
      return answer.action === 'accept' && answer.content?.['approve'] === true
        ? 'accept'
        : 'decline'
    } catch (err) {
      // The SDK reports an aborted request as RequestTimeout too; a cancelled call is no timeout.
      if (options.signal?.aborted === true) return 'decline'
      if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) return 'timeout'
      return 'decline'
    }
  }
}
