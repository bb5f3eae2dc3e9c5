/**
 * The guest prelude: runs inside QuickJS before any model code, in every fresh instance.
 *
 * It captures the pristine intrinsics it relies on (JSON, Promise.prototype.then, Reflect.apply,
 * …) at evaluation time, so model code that later overrides them can only confuse itself, never
 * the marshalling of its result or of its tool arguments. `install` receives the host functions
 * as arguments: they never become globals, so there is nothing to delete afterwards. The guest
 * sees ECMAScript intrinsics plus a frozen `tools` namespace and a frozen `console`.
 *
 * No imports at run time: this file is evaluated as a script (types are stripped by sucrase).
 *
 * @module
 */
import type {
  CallAnswer,
  GuestOptions,
  HostDispatch,
  HostLog,
  PreludeApi,
  WireManifest,
} from './protocol.js'

// Pristine intrinsics, captured before model code exists.
const jsonStringify = JSON.stringify
const jsonParse = JSON.parse
const reflectApply = Reflect.apply
const objectCreate = Object.create
const objectFreeze = Object.freeze
const objectDefineProperty = Object.defineProperty
const objectKeys = Object.keys
const objectHasOwn = Object.hasOwn
const PromiseCtor = Promise
const promiseThen = Promise.prototype.then
const functionBind = Function.prototype.bind
const ErrorCtor = Error
const ProxyCtor = Proxy
const WeakMapCtor = WeakMap
const weakMapGet = WeakMap.prototype.get
const weakMapSet = WeakMap.prototype.set
const weakMapHas = WeakMap.prototype.has
const stringIndexOf = String.prototype.indexOf
const stringSlice = String.prototype.slice
const stringCharCodeAt = String.prototype.charCodeAt
const stringReplace = String.prototype.replace
const StringCtor = String
const mathImul = Math.imul
const InternalErrorCtor = (globalThis as { InternalError?: ErrorConstructor }).InternalError

const MODEL_FILE = 'model.ts:'
const MAX_MESSAGE_CHARS = 2000
/** Property names the runtime itself reads on any object (thenables, JSON, coercion). */
const RESERVED_NAMES: ReadonlySet<string> = new Set([
  'then',
  'toJSON',
  'constructor',
  'toString',
  'valueOf',
])

interface Position {
  line: number
  column: number
}

function utf8Length(s: string): number {
  let bytes = 0
  const n = s.length
  for (let i = 0; i < n; i++) {
    const c = reflectApply(stringCharCodeAt, s, [i]) as number
    if (c < 0x80) bytes += 1
    else if (c < 0x800) bytes += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = reflectApply(stringCharCodeAt, s, [i + 1]) as number
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4
        i++
      } else bytes += 3
    } else bytes += 3
  }
  return bytes
}

function clip(s: string): string {
  return s.length > MAX_MESSAGE_CHARS
    ? (reflectApply(stringSlice, s, [0, MAX_MESSAGE_CHARS]) as string) + '…'
    : s
}

/** First `model.ts:LINE:COL` in a stack text; positions are in the transpiled JS. */
function positionInStack(stack: unknown): Position | undefined {
  if (typeof stack !== 'string') return undefined
  const at = reflectApply(stringIndexOf, stack, [MODEL_FILE]) as number
  if (at < 0) return undefined
  let i = at + MODEL_FILE.length
  let line = 0
  let column = 0
  let digits = 0
  for (; i < stack.length; i++) {
    const c = reflectApply(stringCharCodeAt, stack, [i]) as number
    if (c < 48 || c > 57) break
    line = line * 10 + (c - 48)
    digits++
  }
  if (digits === 0 || reflectApply(stringCharCodeAt, stack, [i]) !== 58) return undefined
  for (i++, digits = 0; i < stack.length; i++) {
    const c = reflectApply(stringCharCodeAt, stack, [i]) as number
    if (c < 48 || c > 57) break
    column = column * 10 + (c - 48)
    digits++
  }
  return digits === 0 ? { line, column: 1 } : { line, column }
}

/** Own data property read that never runs guest getters. */
function ownValue(o: object, key: string): unknown {
  const d = Reflect.getOwnPropertyDescriptor(o, key)
  return d !== undefined && 'value' in d ? d.value : undefined
}

function describeThrown(e: unknown): string {
  try {
    if (e !== null && typeof e === 'object') {
      const name = ownValue(e, 'name') ?? (e instanceof ErrorCtor ? e.name : undefined)
      const message = ownValue(e, 'message')
      if (typeof message === 'string')
        return clip(typeof name === 'string' && name !== '' ? `${name}: ${message}` : message)
    }
    return clip('uncaught ' + formatValue(e))
  } catch {
    return 'uncaught exception'
  }
}

function formatValue(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v
    case 'undefined':
      return 'undefined'
    case 'bigint':
      return StringCtor(v) + 'n'
    case 'symbol':
      return v.toString()
    case 'function':
      return '[Function' + (typeof v.name === 'string' && v.name !== '' ? ': ' + v.name : '') + ']'
    default:
      break
  }
  if (v instanceof ErrorCtor) return describeThrown(v)
  try {
    const s = jsonStringify(v) as string | undefined
    if (s !== undefined) return s
  } catch {
    // cycles, BigInt inside: fall through to String()
  }
  try {
    return StringCtor(v)
  } catch {
    return '[unprintable]'
  }
}

/**
 * `Math.random` as xoshiro128** over the host's seed: 53 random bits from two outputs, the
 * same resolution as V8's. Not for secrets, like any `Math.random`.
 */
function seededRandom(seed: readonly number[]): () => number {
  let [a, b, c, d] = [seed[0]! >>> 0, seed[1]! >>> 0, seed[2]! >>> 0, seed[3]! >>> 0]
  if ((a | b | c | d) === 0) a = 1
  const next = (): number => {
    const result = mathImul(rotl(mathImul(b, 5), 7), 9) >>> 0
    const t = b << 9
    c ^= a
    d ^= b
    b ^= c
    a ^= d
    c ^= t
    d = rotl(d, 11)
    return result
  }
  return function random(): number {
    return ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}

/** Builds the `tools` namespace, the `console`, and the runner. Called once per execution. */
export function install(
  dispatch: HostDispatch,
  log: HostLog,
  manifestJson: string,
  optionsJson: string,
): PreludeApi {
  const manifest = jsonParse(manifestJson) as WireManifest
  const options = jsonParse(optionsJson) as GuestOptions
  objectDefineProperty(Math, 'random', {
    value: seededRandom(options.randomSeed),
    writable: true,
    enumerable: false,
    configurable: true,
  })
  /** Errors made from host answers → the call site, for line/column of an uncaught one. */
  const hostErrors: WeakMap<object, unknown> = new WeakMapCtor()

  function makeError(code: string, message: string, site: Error): Error {
    const e = new ErrorCtor(message)
    // The stack would show prelude frames; the guest gets code and message only.
    delete (e as { stack?: unknown }).stack
    objectDefineProperty(e, 'code', {
      value: code,
      enumerable: true,
      writable: true,
      configurable: true,
    })
    reflectApply(weakMapSet, hostErrors, [e, site.stack])
    return e
  }

  // Rejecting rather than throwing: QuickJS attaches a stack to an Error when it is thrown.
  function rejected(code: string, message: string, site: Error): Promise<never> {
    const e = makeError(code, message, site)
    return new PromiseCtor<never>((_resolve, reject) => reject(e))
  }

  function invoke(server: string, tool: string, args: unknown): Promise<unknown> {
    const site = new ErrorCtor()
    let argsJson: string | undefined
    try {
      argsJson = args === undefined ? '{}' : (jsonStringify(args) as string | undefined)
    } catch (e) {
      return rejected(
        'INVALID_ARGS',
        `arguments of ${server}.${tool} are not JSON-serialisable: ${describeThrown(e)}`,
        site,
      )
    }
    if (argsJson === undefined) {
      return rejected(
        'INVALID_ARGS',
        `arguments of ${server}.${tool} must be a JSON value, not ${typeof args}`,
        site,
      )
    }
    const pending = dispatch(server, tool, argsJson)
    return reflectApply(promiseThen, pending, [
      (answerJson: string) => {
        const answer = jsonParse(answerJson) as CallAnswer
        if (answer.ok) return answer.value
        return rejected(answer.code, answer.message, site)
      },
    ]) as Promise<unknown>
  }

  function unknownTool(server: string, name: string): () => Promise<never> {
    return () => rejected('UNKNOWN_TOOL', `unknown tool ${server}.${name}`, new ErrorCtor())
  }

  function stub(server: string, tool: string, ident: string): unknown {
    const f = reflectApply(functionBind, invoke, [undefined, server, tool]) as (
      args?: unknown,
    ) => Promise<unknown>
    objectDefineProperty(f, 'name', { value: ident })
    return objectFreeze(f)
  }

  /** A frozen map behind a proxy whose only job is: an unknown name rejects with UNKNOWN_TOOL. */
  function guarded<T extends object>(target: T, onUnknown: (name: string) => unknown): T {
    return new ProxyCtor(objectFreeze(target), {
      get(t, key) {
        if (typeof key !== 'string' || objectHasOwn(t, key) || RESERVED_NAMES.has(key)) {
          return (t as Record<PropertyKey, unknown>)[key]
        }
        return onUnknown(key)
      },
    })
  }

  const namespace = objectCreate(null) as Record<string, unknown>
  for (const server of objectKeys(manifest)) {
    const tools = manifest[server] ?? {}
    const map = objectCreate(null) as Record<string, unknown>
    for (const ident of objectKeys(tools)) {
      const upstream = tools[ident]!
      const f = stub(server, upstream, ident)
      map[ident] = f
      if (!objectHasOwn(map, upstream)) map[upstream] = f
    }
    const serverMap = guarded(map, (name) => unknownTool(server, name))
    namespace[server] = serverMap
    const ident = reflectApply(stringReplace, server, [/-/g, '_']) as string
    if (!objectHasOwn(namespace, ident)) namespace[ident] = serverMap
  }
  const unknownServer = (server: string): unknown =>
    guarded(objectCreate(null) as object, (name) => unknownTool(server, name))
  const tools = guarded(namespace, unknownServer)

  let logOpen = true
  const emit =
    (prefix: string) =>
    (...args: unknown[]): void => {
      let line = prefix
      for (let i = 0; i < args.length; i++) line += (i === 0 ? '' : ' ') + formatValue(args[i])
      // As JSON text: the host reads C strings, which would end at the first NUL.
      logOpen = logOpen ? log(jsonStringify(line) as string) : log(utf8Length(line))
    }
  const console = objectCreate(null) as Record<string, unknown>
  console.log = emit('')
  console.info = emit('')
  console.debug = emit('')
  console.warn = emit('[warn] ')
  console.error = emit('[error] ')
  for (const k of objectKeys(console)) objectFreeze(console[k])
  objectFreeze(console)

  objectDefineProperty(globalThis, 'tools', {
    value: tools,
    enumerable: false,
    writable: false,
    configurable: false,
  })
  objectDefineProperty(globalThis, 'console', {
    value: console,
    enumerable: false,
    writable: false,
    configurable: false,
  })

  function errorEnvelope(code: string, message: string, position: Position | undefined): string {
    return jsonStringify(
      position === undefined
        ? { ok: false, code, message }
        : { ok: false, code, message, line: position.line, column: position.column },
    ) as string
  }

  function succeed(value: unknown): string {
    if (value === undefined) return '{"ok":true}'
    let json: string | undefined
    try {
      json = jsonStringify(value) as string | undefined
    } catch (e) {
      return errorEnvelope(
        'RUNTIME_ERROR',
        `the result is not JSON-serialisable: ${describeThrown(e)}`,
        undefined,
      )
    }
    if (json === undefined) return '{"ok":true}'
    if (json.length > options.maxOutputBytes || utf8Length(json) > options.maxOutputBytes) {
      return errorEnvelope(
        'OUTPUT_LIMIT',
        `the result is larger than ${options.maxOutputBytes} bytes once serialised`,
        undefined,
      )
    }
    return '{"ok":true,"result":' + json + '}'
  }

  function fail(e: unknown): string {
    if (e !== null && typeof e === 'object' && reflectApply(weakMapHas, hostErrors, [e])) {
      const code = ownValue(e, 'code')
      const message = ownValue(e, 'message')
      return errorEnvelope(
        typeof code === 'string' ? code : 'RUNTIME_ERROR',
        typeof message === 'string' ? clip(message) : 'tool call failed',
        positionInStack(reflectApply(weakMapGet, hostErrors, [e])),
      )
    }
    let position: Position | undefined
    try {
      position =
        e !== null && typeof e === 'object' ? positionInStack(ownValue(e, 'stack')) : undefined
    } catch {
      position = undefined
    }
    // Engine limits surface as InternalError (or SyntaxError when the parser hits the stack limit).
    if (e instanceof ErrorCtor) {
      const message = ownValue(e, 'message')
      if (message === 'stack overflow')
        return errorEnvelope(
          'STACK_LIMIT',
          'stack overflow: the execution reached its stack limit',
          position,
        )
      if (InternalErrorCtor !== undefined && e instanceof InternalErrorCtor) {
        if (message === 'out of memory')
          return errorEnvelope(
            'MEMORY_LIMIT',
            'out of memory: the execution reached its memory limit',
            position,
          )
        if (message === 'interrupted')
          return errorEnvelope('TIMEOUT', 'the execution ran out of time', position)
      }
    }
    return errorEnvelope('RUNTIME_ERROR', describeThrown(e), position)
  }

  return objectFreeze({
    run(body: () => Promise<unknown>): Promise<string> {
      let pending: Promise<unknown>
      try {
        pending = body()
      } catch (e) {
        return new PromiseCtor<string>((resolve) => resolve(fail(e)))
      }
      return reflectApply(promiseThen, pending, [succeed, fail]) as Promise<string>
    },
  })
}
