/**
 * A raw MCP 2026-07-28 client for the tasks extension, as the wire has it: one POST per
 * request, the `_meta` envelope with the client's capabilities, and the `Mcp-Method` /
 * `Mcp-Name` headers (`Mcp-Name` is the task id for `tasks/*`, SEP-2663). The SDK 2.x client
 * has no task runtime: it rejects `resultType: "task"` as an unsupported result.
 */
export const TASKS = 'io.modelcontextprotocol/tasks'

export interface RpcAnswer {
  status: number
  result?: Record<string, unknown>
  error?: { code: number; message: string; data?: unknown }
}

export interface TaskClientOptions {
  token?: string
  /** The request's client capabilities; default: the tasks extension and form elicitation. */
  capabilities?: Record<string, unknown>
}

const NAME_SOURCE: Record<string, string> = {
  'tools/call': 'name',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
}

let nextId = 1

export function taskClient(url: string, options: TaskClientOptions = {}) {
  const capabilities = options.capabilities ?? {
    elicitation: { form: {} },
    extensions: { [TASKS]: {} },
  }

  async function rpc(
    method: string,
    params: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ): Promise<RpcAnswer> {
    const nameField = NAME_SOURCE[method]
    const name = nameField === undefined ? undefined : params[nameField]
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': method,
        ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
        ...headers,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: nextId++,
        method,
        params: {
          ...params,
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientInfo': { name: 'tasks-e2e', version: '0.0.1' },
            'io.modelcontextprotocol/clientCapabilities': capabilities,
          },
        },
      }),
    })
    const text = await response.text()
    const message = (response.headers.get('content-type') ?? '').includes('text/event-stream')
      ? text
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => JSON.parse(line.slice(5)) as Record<string, unknown>)
          .find((m) => 'result' in m || 'error' in m)
      : (JSON.parse(text) as Record<string, unknown>)
    if (message === undefined) throw new Error(`no JSON-RPC answer (${response.status}): ${text}`)
    return {
      status: response.status,
      ...(message['result'] === undefined
        ? {}
        : { result: message['result'] as Record<string, unknown> }),
      ...(message['error'] === undefined ? {} : { error: message['error'] as RpcAnswer['error'] }),
    }
  }

  /** The answer's result; throws with the error when there is one. */
  async function ok(
    method: string,
    params: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    const answer = await rpc(method, params)
    if (answer.result === undefined)
      throw new Error(`${method} failed: ${JSON.stringify(answer.error)}`)
    return answer.result
  }

  return {
    rpc,
    ok,
    /** `tools/call` of execute_code. */
    execute: (code: string) => ok('tools/call', { name: 'execute_code', arguments: { code } }),
    get: (taskId: string) => ok('tasks/get', { taskId }),
    cancel: (taskId: string) => ok('tasks/cancel', { taskId }),
    update: (taskId: string, inputResponses: Record<string, unknown>) =>
      ok('tasks/update', { taskId, inputResponses }),
    /** Polls `tasks/get` until the task has one of `statuses`, at the task's own interval. */
    async until(
      taskId: string,
      statuses: string[],
      timeoutMs = 20_000,
    ): Promise<Record<string, unknown>> {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const task = await ok('tasks/get', { taskId })
        if (statuses.includes(task['status'] as string)) return task
        if (Date.now() > deadline)
          throw new Error(`task ${taskId} is still ${task['status']} after ${timeoutMs} ms`)
        await new Promise((resolve) => setTimeout(resolve, task['pollIntervalMs'] as number))
      }
    },
  }
}

export type TaskClient = ReturnType<typeof taskClient>
