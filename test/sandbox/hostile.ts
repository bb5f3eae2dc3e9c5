/**
 * A grammar of hostile guest programs for property-based tests (fast-check), and the envelope
 * contract every outcome must obey whatever the program did. Used by
 * test/security/fuzz.test.ts (a fixed seed, in CI) and scripts/fuzz-sandbox.ts (long runs).
 */
import fc from 'fast-check'
import { EXECUTION_ERROR_CODES } from '../../src/errors.js'
import type { SandboxOutcome } from '../../src/sandbox/index.js'
import { WARNING_CODES } from '../../src/sandbox/envelope.js'
import { hasInvisible } from '../../src/text.js'

/** Statements that replace what the prelude and the host rely on. */
const OVERRIDES = [
  'Promise.prototype.then = function (a: any) { a && a("{\\"ok\\":true}"); return this } as any',
  'try { Object.defineProperty(Promise, Symbol.species, { get() { return function () {} } }) } catch {}',
  '(Promise.prototype as any).constructor = function () {}',
  'Object.prototype.toJSON = function () { tools.s.echo({ leaked: "toJSON" }); return "forged" }',
  '(Array.prototype as any)[Symbol.iterator] = function* () { tools.s.echo({ leaked: "iter" }); yield "forged" }',
  'Object.defineProperty(Array.prototype, "0", { get() { tools.s.echo({ leaked: "get0" }); return "forged" }, set() {}, configurable: true })',
  'JSON.stringify = () => "forged"',
  'JSON.parse = () => ({ ok: true, value: "forged" })',
  'Reflect.getOwnPropertyDescriptor = () => ({ value: "forged" })',
  'Object.keys = () => ["forged"]',
  'Function.prototype.call = function () { return "forged" }',
  'Function.prototype.apply = function () { return "forged" }',
  'RegExp.prototype.exec = function () { tools.s.echo({ leaked: "exec" }); return null }',
  'String.prototype.slice = () => "forged"',
  'WeakSet.prototype.has = () => false',
  'WeakMap.prototype.get = () => ({ code: "TOOL_DENIED", message: "forged" })',
  'Error.prototype.toString = () => "forged"',
  'Object.getPrototypeOf = () => null',
  'Date.prototype.toISOString = () => "forged"',
  '(globalThis as any).Proxy = function () { return {} }',
  'Object.defineProperty(Object.prototype, "value", { get() { tools.s.echo({ leaked: "value" }); return "forged" }, configurable: true })',
  'Object.defineProperty(Object.prototype, "code", { get() { return "X".repeat(100000) }, configurable: true })',
]

/** Statements that misbehave in time or memory, or leave work behind. */
const MISCHIEF = [
  'Promise.resolve().then(function loop(): any { return Promise.resolve().then(loop) })',
  'queueMicrotask(() => { for (;;) {} })',
  'try { (globalThis as any).setTimeout(() => {}, 0) } catch {}',
  'try { (globalThis as any).setInterval(() => {}, 0) } catch {}',
  'void tools.s.slow({ ms: 1000 })',
  'void tools.s.fail({}).catch(() => 0)',
  'await tools.s.echo({ n: 1 })',
  'try { await tools.nope.missing({}) } catch {}',
  'console.log("\\u202e" + "y".repeat(100) + "\\u{E0041}")',
  'console.log({ toJSON() { throw new Error("log") } })',
  'let big = "x".repeat(2 ** 20)',
  'Array(2 ** 32 - 1).join("")',
  'Array.prototype.lastIndexOf.call({ length: 2 ** 53 - 1 }, 1)',
  '"x".repeat(2 ** 28)',
  'for (;;) {}',
  'const hog: string[] = []; for (let i = 0; i < 1e6; i++) hog.push("z" + i)',
  'function deep(n: number): number { return n === 0 ? 0 : 1 + deep(n - 1) } deep(1e6)',
]

/** How the program ends: a value to return, or something to throw. */
const ENDINGS = [
  'return { a: 1, b: [1, "two", null] }',
  'return new Proxy({}, { ownKeys() { tools.s.echo({ leaked: "keys" }); return [] } })',
  'return { get g() { tools.s.echo({ leaked: "getter" }); for (;;) {} } }',
  'return new Map([[1, 2]])',
  'return 10n',
  'const c: any = {}; c.c = c; return c',
  'return undefined',
  'return Promise.resolve("late")',
  'return { then(ok: any) { ok("x".repeat(5e6)) } }',
  'return "x".repeat(2e6)',
  'let o: any = 1; for (let i = 0; i < 65; i++) o = [o]; return o',
  'let o: any = 1; for (let i = 0; i < 64; i++) o = [o]; return o',
  'throw new Proxy(new Error("p"), { get() { tools.s.echo({ leaked: "trap" }); return "out of memory" } })',
  'throw null',
  'throw 1n',
  'throw Symbol("s")',
  'throw { get message() { tools.s.echo({ leaked: "msg" }); return "m" } }',
  'throw Object.assign(new Error("\\u200b".repeat(3000)), { code: "TOOL_DENIED" })',
  'throw new (class extends Error { get name(): string { for (;;) {} } })("n")',
  'const e = new Error("x"); Object.defineProperty(e, "stack", { value: "model.ts:99999:1" }); throw e',
]

/** A hostile program: some overrides, some mischief (in any order), one ending. */
export const hostileProgram: fc.Arbitrary<string> = fc
  .tuple(
    fc.subarray(OVERRIDES, { maxLength: 3 }),
    fc.subarray(MISCHIEF, { maxLength: 2 }),
    fc.constantFrom(...ENDINGS),
    fc.boolean(),
  )
  .map(([overrides, mischief, ending, mischiefFirst]) =>
    (mischiefFirst ? [...mischief, ...overrides] : [...overrides, ...mischief])
      .concat(ending)
      .join('\n'),
  )

const CODES: ReadonlySet<string> = new Set(EXECUTION_ERROR_CODES)
const WARNINGS: ReadonlySet<string> = new Set(WARNING_CODES)
const HOST_DETAIL = /\/work\/|node_modules|file:\/\/|\.mjs|worker\.ts|pool\.ts|prelude/

/** Every way `outcome` breaks the envelope contract of DESIGN.md §3b (empty when none). */
export function envelopeProblems(
  outcome: SandboxOutcome,
  code: string,
  maxOutputBytes: number,
): string[] {
  const problems: string[] = []
  if (typeof outcome.ok !== 'boolean') problems.push('ok is not a boolean')
  if (outcome.ok) {
    const bytes = Buffer.byteLength(JSON.stringify(outcome.result ?? null))
    if (bytes > maxOutputBytes)
      problems.push(`result of ${bytes} bytes passed the limit of ${maxOutputBytes}`)
    if (outcome.error !== undefined) problems.push('ok with an error')
  } else {
    const error = outcome.error
    if (error === undefined) problems.push('not ok without an error')
    else {
      if (!CODES.has(error.code))
        problems.push(`unknown code ${JSON.stringify(error.code.slice(0, 80))}`)
      if (Buffer.byteLength(error.message) > 2048) problems.push('message over 2 KiB')
      if (hasInvisible(error.message)) problems.push('invisible characters in the message')
      const lines = code.split('\n').length
      for (const [name, n] of [
        ['line', error.line],
        ['column', error.column],
      ] as const) {
        if (n !== undefined && !(Number.isInteger(n) && n > 0))
          problems.push(`${name} ${String(n)} is not a positive integer`)
      }
      if (error.line !== undefined && error.line > lines)
        problems.push(`line ${error.line} is outside the ${lines} lines`)
    }
  }
  for (const w of outcome.warnings)
    if (!WARNINGS.has(w.code)) problems.push(`unknown warning ${w.code}`)
  for (const line of outcome.logs)
    if (hasInvisible(line)) problems.push('invisible characters in a log line')
  if (HOST_DETAIL.test(JSON.stringify(outcome))) problems.push('host detail in the outcome')
  return problems
}
