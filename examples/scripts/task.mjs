// Runs code as an MCP 2026-07-28 task on a sluice gateway, on the raw wire (no SDK needed):
// `execute_code` with the tasks extension declared answers at once with a task; this polls
// `tasks/get` at the task's `pollIntervalMs` until it ends, answers an approval on the terminal
// (`tasks/update`), and cancels it on Ctrl-C (`tasks/cancel`). Node 20+, no dependencies.
//
//   TOKEN=... node examples/scripts/task.mjs 'return 6 * 7'
//   SLUICE_URL=http://127.0.0.1:8787/mcp TOKEN=... node examples/scripts/task.mjs "$(cat script.ts)"
import { createInterface } from 'node:readline/promises'

const url = process.env.SLUICE_URL ?? 'http://127.0.0.1:8787/mcp'
const code = process.argv[2]
if (code === undefined) {
  console.error("usage: TOKEN=... node examples/scripts/task.mjs 'return 6 * 7'")
  process.exit(2)
}

let id = 0
/** One JSON-RPC request, as SEP-2243 and SEP-2663 want it: Mcp-Method, Mcp-Name, the `_meta` envelope. */
async function rpc(method, params, name) {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
      ...(name === undefined ? {} : { 'mcp-name': name }),
      ...(process.env.TOKEN ? { authorization: `Bearer ${process.env.TOKEN}` } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: ++id,
      method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'task-example', version: '1.0.0' },
          'io.modelcontextprotocol/clientCapabilities': {
            elicitation: { form: {} },
            extensions: { 'io.modelcontextprotocol/tasks': {} },
          },
        },
      },
    }),
  })
  const text = await response.text()
  // A JSON body, or an SSE stream whose data line carries the answer.
  const message = text.startsWith('{')
    ? JSON.parse(text)
    : text
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => JSON.parse(line.slice(5)))
        .find((m) => 'result' in m || 'error' in m)
  if (message?.error) throw new Error(`${method}: ${message.error.code} ${message.error.message}`)
  return message.result
}

const created = await rpc(
  'tools/call',
  { name: 'execute_code', arguments: { code } },
  'execute_code',
)
if (created.resultType !== 'task') {
  // No task (a refusal such as TASK_LIMIT, or a gateway without tasks): the plain result.
  console.log(JSON.stringify(created.structuredContent ?? created, null, 2))
  process.exit(created.isError ? 1 : 0)
}
const { taskId } = created
console.error(`task ${taskId}: ${created.status} (kept ${created.ttlMs} ms)`)
process.once('SIGINT', () => {
  rpc('tasks/cancel', { taskId }, taskId).then(() => console.error('cancel sent'))
})

const answered = new Set()
for (;;) {
  const task = await rpc('tasks/get', { taskId }, taskId)
  if (task.status === 'input_required') {
    for (const [key, request] of Object.entries(task.inputRequests ?? {})) {
      if (answered.has(key)) continue
      answered.add(key)
      const rl = createInterface({ input: process.stdin, output: process.stderr })
      const yes = /^y/i.test(await rl.question(`${request.params.message}\napprove? [y/N] `))
      rl.close()
      await rpc(
        'tasks/update',
        { taskId, inputResponses: { [key]: { action: 'accept', content: { approve: yes } } } },
        taskId,
      )
    }
  } else if (['completed', 'failed', 'cancelled'].includes(task.status)) {
    console.error(`task ${taskId}: ${task.status}: ${task.statusMessage}`)
    console.log(JSON.stringify(task.result?.structuredContent ?? task.error ?? null, null, 2))
    process.exit(task.status === 'completed' && !task.result?.isError ? 0 : 1)
  }
  await new Promise((resolve) => setTimeout(resolve, task.pollIntervalMs ?? 1000))
}
