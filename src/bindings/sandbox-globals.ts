/**
 * Names a model reaches for that the sandbox does not have, each with what it offers instead.
 * The guest sees ECMAScript, `tools` and `console` (DESIGN.md §3, "Guest API"); TypeScript's own
 * advice for these names ("npm i --save-dev @types/node", "add 'dom' to lib") would mislead.
 * Used by the type checker's hints and by the engine's explanation of a failed run.
 *
 * @module
 */

const NO_MODULES =
  'there are no modules in the sandbox: `tools` and `console` are globals; reach files, network and services through tools.<server>.<tool>(args)'
const NO_NETWORK =
  'there is no network in the sandbox: call a tool instead, await tools.<server>.<tool>(args)'
const NO_TIMERS =
  'there are no timers in the sandbox: await the tool calls directly (each await waits for its answer); for several at once, await Promise.all([...])'
const NO_DOM = 'there is no DOM in the sandbox: only ECMAScript, `tools` and `console`'
const OUTER =
  'is a tool of the gateway next to execute_code, not callable from code: call it on its own, or read the declarations in the execute_code description'

const ADVICE: ReadonlyMap<string, string> = new Map([
  ['require', NO_MODULES],
  ['module', NO_MODULES],
  ['exports', NO_MODULES],
  ['__dirname', NO_MODULES],
  ['__filename', NO_MODULES],
  ['fetch', NO_NETWORK],
  ['XMLHttpRequest', NO_NETWORK],
  ['WebSocket', NO_NETWORK],
  ['setTimeout', NO_TIMERS],
  ['setInterval', NO_TIMERS],
  ['setImmediate', NO_TIMERS],
  ['queueMicrotask', NO_TIMERS],
  [
    'process',
    'there is no process in the sandbox (no env, argv or exit): values come from tool results, and the code ends with return',
  ],
  ['Buffer', 'there is no Buffer in the sandbox: work with strings and arrays (ECMAScript only)'],
  ['window', NO_DOM],
  ['document', NO_DOM],
  ['localStorage', NO_DOM],
  ['search_tools', `search_tools ${OUTER}`],
  ['execute_code', `execute_code ${OUTER}`],
])

/** What to use instead of `name`, when it is a global the sandbox does not have. */
export function sandboxAdvice(name: string): string | undefined {
  return ADVICE.get(name)
}

/** The advice for an `import` or a module load. */
export const NO_MODULES_ADVICE = NO_MODULES
