/**
 * The task shapes of the `io.modelcontextprotocol/tasks` extension (SEP-2663) as sluice writes
 * them: the `CreateTaskResult` of a `tools/call` and the detailed task of `tasks/get`.
 *
 * @module
 */
import { inputRequired } from '@modelcontextprotocol/server'
import type { TaskView } from '../types.js'
import { APPROVAL_SCHEMA, approvalMessage } from './approval.js'
import { toCallToolResult } from './render.js'

/** JSON-RPC internal error, the code of a failed task's error. */
const INTERNAL_ERROR = -32603

export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks'

/** The wire fields of every task shape (SEP-2663 `Task`). */
function taskFields(task: TaskView) {
  return {
    taskId: task.taskId,
    status: task.status,
    statusMessage: task.statusMessage,
    createdAt: new Date(task.createdAt).toISOString(),
    lastUpdatedAt: new Date(task.lastUpdatedAt).toISOString(),
    ttlMs: task.ttlMs,
    pollIntervalMs: task.pollIntervalMs,
  }
}

/** The answer to a `tools/call` that became a task (`CreateTaskResult`). */
export interface TaskAnswer extends ReturnType<typeof taskFields> {
  resultType: 'task'
}

export function createTaskResult(task: TaskView): TaskAnswer {
  return { resultType: 'task', ...taskFields(task) }
}

/**
 * `tasks/get`: the task with what its status carries. A completed task inlines the
 * `CallToolResult` (an execution that failed is completed with `isError`, as the spec says for
 * tool errors); a failed one a JSON-RPC error (its replica died, or a bug); a task waiting for
 * input the approval as an elicitation. A cancelled task also carries the result of the
 * execution it stopped (error `CANCELLED`, and the calls it made), a sluice addition.
 */
export function detailedTask(task: TaskView): Record<string, unknown> {
  const fields = taskFields(task)
  switch (task.status) {
    case 'completed':
    case 'cancelled':
      return task.result === undefined
        ? fields
        : { ...fields, result: toCallToolResult(task.result) }
    case 'failed':
      return {
        ...fields,
        error: { code: INTERNAL_ERROR, message: task.failure ?? task.statusMessage },
      }
    case 'input_required':
      return task.input === undefined
        ? fields
        : {
            ...fields,
            inputRequests: {
              [task.input.key]: inputRequired.elicit({
                mode: 'form',
                message: approvalMessage(task.input.question),
                requestedSchema: APPROVAL_SCHEMA,
              }),
            },
          }
    default:
      return fields
  }
}
