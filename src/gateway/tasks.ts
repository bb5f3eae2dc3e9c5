/**
 * Tasks on the wire of MCP 2026-07-28: the `io.modelcontextprotocol/tasks` extension (SEP-2663).
 * A client that declares the extension in a request's capabilities gets `execute_code` as a
 * task (`resultType: "task"`); `tasks/get` returns the task with its result inlined once it is
 * done, `tasks/update` carries the answer to an approval, `tasks/cancel` asks it to stop. There
 * is no `tasks/result` and no `tasks/list` on this revision (the SDK answers -32601).
 *
 * The work (store, lease, cancellation across replicas) is the engine's (src/engine/tasks.ts);
 * this module maps it to the wire and back, and nothing outside the gateway sees the SDK.
 *
 * @module
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  MissingRequiredClientCapabilityError,
  acceptedContent,
  type Server,
  type ServerContext,
} from '@modelcontextprotocol/server'
import * as z from 'zod'
import { isSluiceError } from '../errors.js'
import type { TaskEngine } from './contracts.js'
import { INTERNAL_ERROR, INVALID_PARAMS, ProtocolError, identityOf } from './surface.js'
import { TASKS_EXTENSION, detailedTask } from './task-wire.js'

export { TASKS_EXTENSION }

/** Whether the request declared the tasks extension in its capabilities. */
export function declaresTasks(ctx: ServerContext): boolean {
  // The SDK types the envelope as `{}`; the key and its shape are the spec's.
  const envelope = ctx.mcpReq.envelope as
    Record<string, { extensions?: Record<string, unknown> } | undefined> | undefined
  return envelope?.[CLIENT_CAPABILITIES_META_KEY]?.extensions?.[TASKS_EXTENSION] !== undefined
}

/** Whether the request declared it can answer a form elicitation. */
export function declaresElicitation(ctx: ServerContext): boolean {
  const envelope = ctx.mcpReq.envelope as Record<string, { elicitation?: unknown }> | undefined
  return envelope?.[CLIENT_CAPABILITIES_META_KEY]?.elicitation !== undefined
}

/**
 * The one answer for a task this caller cannot see: never issued, another caller's, or gone
 * after its TTL. The same words for all three, so an id is no oracle.
 */
export function unknownTask(taskId: string): ProtocolError {
  return new ProtocolError(
    INVALID_PARAMS,
    `Unknown task ${JSON.stringify(taskId.slice(0, 64))}: this caller has no task with that id (it was never created, belongs to another caller, or its ttlMs ran out)`,
  )
}

const TaskIdParams = z.looseObject({ taskId: z.string() })
const UpdateParams = z.looseObject({ taskId: z.string() })

/** Registers `tasks/get`, `tasks/update` and `tasks/cancel` on a per-request server. */
export function registerTaskHandlers(server: Server, tasks: TaskEngine): void {
  /** Runs a task method for a caller that declared the extension; store faults are -32603. */
  const guarded = async <T>(ctx: ServerContext, work: () => Promise<T>): Promise<T> => {
    if (!declaresTasks(ctx)) {
      throw new MissingRequiredClientCapabilityError({
        requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } },
      })
    }
    try {
      return await work()
    } catch (err) {
      if (isSluiceError(err, 'STORE_UNAVAILABLE'))
        throw new ProtocolError(
          INTERNAL_ERROR,
          `the task store is unavailable: ${err.message}; send the request again`,
        )
      throw err
    }
  }
  const principalOf = (ctx: ServerContext) => identityOf(ctx.http?.authInfo).principal

  server.setRequestHandler('tasks/get', { params: TaskIdParams }, (params, ctx) =>
    guarded(ctx, async () => {
      const task = await tasks.get(principalOf(ctx), params.taskId)
      if (task === undefined) throw unknownTask(params.taskId)
      return detailedTask(task) as never
    }),
  )
  server.setRequestHandler('tasks/cancel', { params: TaskIdParams }, (params, ctx) =>
    guarded(ctx, async () => {
      if (!(await tasks.cancel(principalOf(ctx), params.taskId))) throw unknownTask(params.taskId)
      return {}
    }),
  )
  server.setRequestHandler('tasks/update', { params: UpdateParams }, (params, ctx) =>
    guarded(ctx, async () => {
      // The SDK lifts `inputResponses` off the params (SEP-2322 wire material) onto the context.
      const responses = ctx.mcpReq.inputResponses ?? {}
      // Only an explicit yes approves: decline, cancel, a missing or malformed answer refuse.
      const answers = Object.fromEntries(
        Object.keys(responses).map((key) => [
          key,
          acceptedContent(responses, key)?.['approve'] === true
            ? ('accept' as const)
            : ('decline' as const),
        ]),
      )
      const who = identityOf(ctx.http?.authInfo)
      const found = await tasks.answer(who.principal, params.taskId, answers, {
        ...(who.token === undefined ? {} : { inboundToken: who.token }),
        canAsk: true,
      })
      if (!found) throw unknownTask(params.taskId)
      return {}
    }),
  )
}
