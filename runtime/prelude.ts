/**
 * The guest prelude: runs inside QuickJS before any model code, in every fresh instance.
 *
 * It captures the pristine intrinsics it relies on (JSON, Reflect, Promise.prototype.then, …) at
 * evaluation time, so model code that later overrides them can only confuse itself, never the
 * marshalling of its result or of its tool arguments. `install` receives the host functions as
 * arguments: they never become globals, so there is nothing to delete afterwards. The guest sees
 * ECMAScript intrinsics plus a frozen `tools` namespace and a frozen `console`.
 *
 * Reading the outcome runs no guest code. The host learns of it from `settled`, called from the
 * promise job that settles the body, and then calls `serialize` or `describe`, which read values
 * only through property descriptors: a getter is not called, a Proxy (every Proxy is made through
 * the wrapper below, so each one is known) is not entered, `toJSON` is not called. Two hooks that
 * would otherwise run guest code on the way, `Promise.prototype.constructor` and
 * `Promise[Symbol.species]`, are made non-configurable with their original values.
 *
 * None of this is trusted by the host, which re-checks sizes, codes and positions
 * (src/sandbox/envelope.ts): it keeps honest code's results exact and hostile code's cheap.
 *
 * No imports at run time: this file is evaluated as a script (types are stripped by sucrase).
 *
 * @module
 */
import type {
  CallAnswer,
  DescribedError,
  GuestOptions,
  HostDispatch,
  HostLog,
  HostSettled,
  PreludeApi,
  SerializeBounds,
  SerializedResult,
  WireManifest,
  WireWarning,
} from './protocol.js'

// Pristine intrinsics, captured before model code exists.
const jsonStringify = JSON.stringify
const jsonParse = JSON.parse
const reflectApply = Reflect.apply
const getOwn = Reflect.getOwnPropertyDescriptor
const objectCreate = Object.create
const objectFreeze = Object.freeze
const objectDefineProperty = Object.defineProperty
const objectKeys = Object.keys
const objectHasOwn = Object.hasOwn
const getPrototypeOf = Object.getPrototypeOf
const isArray = Array.isArray
const ObjectProto = Object.prototype
const ArrayProto = Array.prototype
const PromiseCtor = Promise
const promiseThen = Promise.prototype.then
const functionBind = Function.prototype.bind
const ErrorCtor = Error
const ErrorProto = Error.prototype
const ProxyCtor = Proxy
const proxyRevocable = Proxy.revocable
const WeakMapCtor = WeakMap
const weakMapGet = WeakMap.prototype.get
const weakMapSet = WeakMap.prototype.set
const WeakSetCtor = WeakSet
const weakSetAdd = WeakSet.prototype.add
const weakSetHas = WeakSet.prototype.has
const weakSetDelete = WeakSet.prototype.delete
const TypeErrorCtor = TypeError
const stringSlice = String.prototype.slice
const stringCharCodeAt = String.prototype.charCodeAt
const stringReplace = String.prototype.replace
const StringCtor = String
const symbolToString = Symbol.prototype.toString
const bigintToString = BigInt.prototype.toString
const dateToISOString = Date.prototype.toISOString
const dateGetTime = Date.prototype.getTime
const numberValueOf = Number.prototype.valueOf
const stringValueOf = String.prototype.valueOf
const booleanValueOf = Boolean.prototype.valueOf
const bigintValueOf = BigInt.prototype.valueOf
const mathImul = Math.imul
const isFiniteNumber = Number.isFinite
const DateProto = Date.prototype
const NumberProto = Number.prototype
const StringProto = String.prototype
const BooleanProto = Boolean.prototype
const BigIntProto = BigInt.prototype
const PromiseProto = Promise.prototype
const MapProto = Map.prototype
const SetProto = Set.prototype
const InternalErrorProto = (globalThis as { InternalError?: ErrorConstructor }).InternalError
  ?.prototype

const MAX_MESSAGE_CHARS = 2000
/** Longest text of a thrown non-Error value in an error message. */
const MAX_THROWN_CHARS = 200
/** Property names the runtime itself reads on any object (thenables, JSON, coercion). */
const RESERVED_NAMES: ReadonlySet<string> = new Set([
  'then',
  'toJSON',
  'constructor',
  'toString',
  'valueOf',
])

// ── hardening ──────────────────────────────────────────────────────────────────────────────

/** Every Proxy the guest makes, so that readers can refuse to enter one (no trap ever runs). */
const proxies: WeakSet<object> = new WeakSetCtor()

function isProxy(value: object): boolean {
  return reflectApply(weakSetHas, proxies, [value]) as boolean
}

function trackedProxy(target: object, handler: ProxyHandler<object>): object {
  if (new.target === undefined) throw new TypeErrorCtor("Constructor Proxy requires 'new'")
  const proxy = new ProxyCtor(target, handler)
  reflectApply(weakSetAdd, proxies, [proxy])
  return proxy
}

// A bound function is constructible and, like the real Proxy, has no `prototype` property.
const ProxyShim = reflectApply(functionBind, trackedProxy, [undefined]) as ProxyConstructor
objectDefineProperty(ProxyShim, 'name', { value: 'Proxy', configurable: true })
objectDefineProperty(ProxyShim, 'revocable', {
  value: function revocable(target: object, handler: ProxyHandler<object>) {
    const pair = proxyRevocable(target, handler)
    reflectApply(weakSetAdd, proxies, [pair.proxy])
    return pair
  },
  writable: true,
  configurable: true,
})
objectDefineProperty(globalThis, 'Proxy', {
  value: ProxyShim,
  writable: true,
  enumerable: false,
  configurable: true,
})

// `then` on a native promise looks these up (SpeciesConstructor); fixed, it runs no guest code.
objectDefineProperty(PromiseProto, 'constructor', {
  value: PromiseCtor,
  writable: false,
  configurable: false,
})
const speciesGetter = getOwn(PromiseCtor, Symbol.species)?.get
objectDefineProperty(PromiseCtor, Symbol.species, {
  get: speciesGetter,
  enumerable: false,
  configurable: false,
})

// ── helpers that run no guest code ─────────────────────────────────────────────────────────

/** An own data property's value; accessors and absent properties give `undefined`. */
function ownValue(o: object, key: PropertyKey): unknown {
  return dataValue(getOwn(o, key))
}

/**
 * The value of a descriptor that describes a data property, else `undefined`. `hasOwn`, not
 * `in`: an inherited `Object.prototype.value` (or a getter there) must not count.
 */
function dataValue(d: PropertyDescriptor | undefined): unknown {
  return d !== undefined && objectHasOwn(d, 'value') ? d.value : undefined
}

function isData(d: PropertyDescriptor): boolean {
  return objectHasOwn(d, 'value')
}

/** Whether `proto` is on `o`'s prototype chain, walking only non-Proxy objects. */
function inherits(o: object, proto: object | undefined): boolean {
  if (proto === undefined) return false
  let p = getPrototypeOf(o) as object | null
  for (let hops = 0; p !== null && hops < 64; hops++) {
    if (p === proto) return true
    if (isProxy(p)) return false
    p = getPrototypeOf(p) as object | null
  }
  return false
}

/** A data property found on `o` or its (non-Proxy) prototypes. */
function dataProperty(o: object, key: string): unknown {
  let p: object | null = o
  for (let hops = 0; p !== null && hops < 64; hops++) {
    if (isProxy(p)) return undefined
    const d = getOwn(p, key)
    if (d !== undefined) return dataValue(d)
    p = getPrototypeOf(p) as object | null
  }
  return undefined
}

function clip(s: string, max = MAX_MESSAGE_CHARS): string {
  return s.length > max ? `${reflectApply(stringSlice, s, [0, max]) as string}…` : s
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

// ── the result serialiser ──────────────────────────────────────────────────────────────────

/** Ends serialisation with a code; thrown and caught inside the serialiser only. */
class Stop {
  readonly code: string
  readonly message: string
  constructor(code: string, message: string) {
    this.code = code
    this.message = message
  }
}

/** `[A-Za-z_$][\w$]*`, by hand: `RegExp.prototype.exec` is the guest's to replace. */
function isIdentifier(key: string): boolean {
  if (key.length === 0 || key.length > 64) return false
  for (let i = 0; i < key.length; i++) {
    const c = reflectApply(stringCharCodeAt, key, [i]) as number
    const letter = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36
    if (!letter && !(i > 0 && c >= 48 && c <= 57)) return false
  }
  return true
}

function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`
  return isIdentifier(key) ? `${path}.${key}` : `${path}[${jsonStringify(key) as string}]`
}

/**
 * Appends to an array the prelude made, without [[Set]]: an index setter the guest defined on
 * `Array.prototype` would otherwise run.
 */
function append<T>(list: T[], item: T): void {
  objectDefineProperty(list, list.length, {
    value: item,
    writable: true,
    enumerable: true,
    configurable: true,
  })
}

/** JSON text of an object of strings, built by hand: JSON.stringify would look up `toJSON`. */
function encode(
  fields: Record<string, string | undefined>,
  raw: Record<string, string> = {},
): string {
  let out = '{'
  // Index loops: `for…of` would run the guest's Array.prototype[Symbol.iterator].
  const keys = objectKeys(fields)
  for (let i = 0; i < keys.length; i++) {
    const value = fields[keys[i]!]
    if (value === undefined) continue
    out += `${out === '{' ? '' : ','}${jsonStringify(keys[i]) as string}:${jsonStringify(value) as string}`
  }
  const rawKeys = objectKeys(raw)
  for (let i = 0; i < rawKeys.length; i++) {
    out += `${out === '{' ? '' : ','}${jsonStringify(rawKeys[i]) as string}:${raw[rawKeys[i]!]!}`
  }
  return `${out}}`
}

/**
 * JSON text of `root`, by JSON.stringify's rules where they run no guest code, with these
 * differences, each reported as a warning: an accessor property is left out (an array element
 * becomes null), a Proxy becomes null, `toJSON` is not called (a Date still becomes its ISO
 * string), and a Promise, Map, Set or function is named as the probable mistake it is. Array
 * holes are null without a prototype lookup. A BigInt or a cycle is an error, as in JSON.
 */
function serializeValue(root: unknown, bounds: SerializeBounds): SerializedResult {
  const warnings: WireWarning[] = []
  /** The objects on the path from the root: meeting one again is a cycle. */
  const onPath: WeakSet<object> = new WeakSetCtor()
  let chars = 0

  const warn = (code: string, message: string, path: string): void => {
    if (warnings.length < bounds.maxWarnings) append(warnings, { code, message, path })
  }
  const emit = (text: string): string => {
    chars += text.length
    if (chars > bounds.maxChars) throw new Stop('OUTPUT_LIMIT', 'the result is too large')
    return text
  }

  const write = (value: unknown, path: string, depth: number): string | undefined => {
    switch (typeof value) {
      case 'string':
        return emit(jsonStringify(value) as string)
      case 'number':
        return emit(isFiniteNumber(value) ? (jsonStringify(value) as string) : 'null')
      case 'boolean':
        return emit(value ? 'true' : 'false')
      case 'undefined':
        return undefined
      case 'symbol':
        return undefined
      case 'function':
        warn(
          'FUNCTION_IN_RESULT',
          'a function cannot be returned: it was left out; return the value it computes (call it: return await f())',
          path,
        )
        return undefined
      case 'bigint':
        throw new Stop(
          'RUNTIME_ERROR',
          `the result is not JSON-serialisable: a BigInt at ${path} (convert it with String())`,
        )
      default:
        break
    }
    if (value === null) return emit('null')
    const o = value as object
    if (isProxy(o)) {
      warn('PROXY_IN_RESULT', 'a Proxy is not read (its traps would run): it became null', path)
      return emit('null')
    }
    if (depth >= bounds.maxDepth) {
      throw new Stop('OUTPUT_LIMIT', `the result is nested deeper than ${bounds.maxDepth} levels`)
    }
    if (reflectApply(weakSetHas, onPath, [o])) {
      throw new Stop('RUNTIME_ERROR', `the result is not JSON-serialisable: a cycle at ${path}`)
    }
    const proto = getPrototypeOf(o) as object | null
    if (proto !== ObjectProto && proto !== null && proto !== ArrayProto) {
      const special = writeSpecial(o, path)
      if (special !== undefined) return special
    }
    reflectApply(weakSetAdd, onPath, [o])
    let out: string
    if (isArray(o)) {
      const length = ownValue(o, 'length') as number
      if (length * 2 > bounds.maxChars) throw new Stop('OUTPUT_LIMIT', 'the result is too large')
      out = emit('[')
      for (let i = 0; i < length; i++) {
        if (i > 0) out += emit(',')
        const d = getOwn(o, i)
        if (d === undefined) out += emit('null')
        else if (!isData(d)) {
          warn(
            'GETTER_IN_RESULT',
            'a getter is not run while the result is read: it became null',
            childPath(path, i),
          )
          out += emit('null')
        } else out += write(d.value, childPath(path, i), depth + 1) ?? emit('null')
      }
      out += emit(']')
    } else {
      const keys = objectKeys(o)
      out = emit('{')
      let first = true
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!
        const d = getOwn(o, key)
        if (d === undefined) continue
        if (!isData(d)) {
          warn(
            'GETTER_IN_RESULT',
            'a getter is not run while the result is read: it was left out',
            childPath(path, key),
          )
          continue
        }
        if (key === 'toJSON' && typeof d.value === 'function') {
          warn('TOJSON_IN_RESULT', 'toJSON is not called while the result is read', path)
          continue
        }
        const before = chars
        const prefix = `${first ? '' : ','}${jsonStringify(key) as string}:`
        chars += prefix.length
        const item = write(d.value, childPath(path, key), depth + 1)
        if (item === undefined) {
          chars = before
          continue
        }
        if (chars > bounds.maxChars) throw new Stop('OUTPUT_LIMIT', 'the result is too large')
        out += prefix + item
        first = false
      }
      out += emit('}')
    }
    reflectApply(weakSetDelete, onPath, [o])
    return out
  }

  /** Dates, boxed primitives and the usual mistakes; undefined for an ordinary object. */
  const writeSpecial = (o: object, path: string): string | undefined => {
    if (inherits(o, DateProto)) {
      try {
        const time = reflectApply(dateGetTime, o, []) as number
        return emit(
          isFiniteNumber(time)
            ? (jsonStringify(reflectApply(dateToISOString, o, [])) as string)
            : 'null',
        )
      } catch {
        // not a real Date: an ordinary object with Date.prototype in its chain
      }
    }
    const boxed = unbox(o)
    if (boxed !== undefined) return write(boxed.value, path, 0)
    if (inherits(o, PromiseProto)) {
      warn('PROMISE_IN_RESULT', 'a Promise became {}: did you forget an await?', path)
    } else if (inherits(o, MapProto)) {
      warn('MAP_IN_RESULT', 'a Map became {}: return Object.fromEntries(map) instead', path)
    } else if (inherits(o, SetProto)) {
      warn('SET_IN_RESULT', 'a Set became {}: return [...set] instead', path)
    } else if (inherits(o, ErrorProto)) {
      warn('ERROR_IN_RESULT', 'an Error became {}: return its message instead', path)
    } else if (dataProperty(o, 'toJSON') !== undefined) {
      warn('TOJSON_IN_RESULT', 'toJSON is not called while the result is read', path)
    }
    return undefined
  }

  try {
    const json = write(root, 'result', 0)
    return json === undefined ? { ok: true, warnings } : { ok: true, json, warnings }
  } catch (e) {
    if (e instanceof Stop) return { ok: false, code: e.code, message: e.message, warnings }
    // The engine's own limits (memory, stack) while serialising.
    const described = describeThrown(e)
    return { ok: false, code: described.code, message: described.message, warnings }
  }
}

/** The primitive inside a Number, String or Boolean object (a BigInt box is still a BigInt). */
function unbox(o: object): { value: unknown } | undefined {
  const unwrap = inherits(o, NumberProto)
    ? numberValueOf
    : inherits(o, StringProto)
      ? stringValueOf
      : inherits(o, BooleanProto)
        ? booleanValueOf
        : inherits(o, BigIntProto)
          ? bigintValueOf
          : undefined
  if (unwrap === undefined) return undefined
  try {
    return { value: reflectApply(unwrap as (this: unknown) => unknown, o, []) }
  } catch {
    // not a real box: an ordinary object with that prototype in its chain
    return undefined
  }
}

// ── thrown values ──────────────────────────────────────────────────────────────────────────

/** A thrown value's code, message and stack, read without running guest code. */
function describeThrown(e: unknown): DescribedError {
  if (e === null || typeof e !== 'object') {
    return { code: 'RUNTIME_ERROR', message: `uncaught ${formatPrimitive(e)}` }
  }
  if (isProxy(e)) return { code: 'RUNTIME_ERROR', message: 'uncaught exception: a Proxy object' }
  const message = ownValue(e, 'message')
  const stackValue = ownValue(e, 'stack')
  const stack = typeof stackValue === 'string' ? clip(stackValue, 4 * MAX_MESSAGE_CHARS) : undefined
  const at = stack === undefined ? {} : { stack }
  // Engine limits surface as InternalError (or SyntaxError when the parser hits the stack limit).
  if (message === 'stack overflow' && inherits(e, ErrorProto)) {
    return {
      code: 'STACK_LIMIT',
      message: 'stack overflow: the execution reached its stack limit',
      ...at,
    }
  }
  if (inherits(e, InternalErrorProto)) {
    if (message === 'out of memory') {
      return {
        code: 'MEMORY_LIMIT',
        message: 'out of memory: the execution reached its memory limit',
        ...at,
      }
    }
    if (message === 'interrupted')
      return { code: 'TIMEOUT', message: 'the execution ran out of time', ...at }
  }
  const name = dataProperty(e, 'name')
  const named = typeof name === 'string' && name !== ''
  if (typeof message === 'string') {
    return { code: 'RUNTIME_ERROR', message: clip(named ? `${name}: ${message}` : message), ...at }
  }
  // An Error whose message is not a plain property (a getter is not run).
  if (named && inherits(e, ErrorProto))
    return { code: 'RUNTIME_ERROR', message: `uncaught ${clip(name, MAX_THROWN_CHARS)}`, ...at }
  const shown = serializeValue(e, { maxChars: MAX_THROWN_CHARS, maxDepth: 4, maxWarnings: 0 })
  const text = shown.ok && shown.json !== undefined ? shown.json : '[object]'
  return { code: 'RUNTIME_ERROR', message: `uncaught ${text}`, ...at }
}

function formatPrimitive(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return clip(v, MAX_THROWN_CHARS)
    case 'symbol':
      return reflectApply(symbolToString, v, []) as string
    case 'bigint':
      return `${reflectApply(bigintToString, v, []) as string}n`
    case 'undefined':
      return 'undefined'
    default:
      return StringCtor(v)
  }
}

/** How console.log shows a value (this runs inside the model's own time, so toJSON may run). */
function formatValue(v: unknown): string {
  if (typeof v === 'string') return v
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return formatPrimitive(v)
  if (typeof v === 'function') {
    const name = ownValue(v, 'name')
    return `[Function${typeof name === 'string' && name !== '' ? `: ${name}` : ''}]`
  }
  if (inherits(v, ErrorProto) && !isProxy(v)) return describeThrown(v).message
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

// ── install ────────────────────────────────────────────────────────────────────────────────

/** Builds the `tools` namespace, the `console`, and the runner. Called once per execution. */
export function install(
  dispatch: HostDispatch,
  log: HostLog,
  settled: HostSettled,
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
  /** Errors made from host answers → what the host said, and the call site's stack. */
  const hostErrors: WeakMap<object, DescribedError> = new WeakMapCtor()

  // Rejecting rather than throwing: QuickJS attaches a stack to an Error when it is thrown.
  function rejected(code: string, message: string, site: Error): Promise<never> {
    const e = new ErrorCtor(message)
    // The stack would show prelude frames; the guest gets code and message only.
    delete (e as { stack?: unknown }).stack
    objectDefineProperty(e, 'code', {
      value: code,
      enumerable: true,
      writable: true,
      configurable: true,
    })
    const stack = ownValue(site, 'stack')
    reflectApply(weakMapSet, hostErrors, [
      e,
      typeof stack === 'string' ? { code, message, stack } : { code, message },
    ])
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
        `arguments of ${server}.${tool} are not JSON-serialisable: ${describeThrown(e).message}`,
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
    // Names as JSON text, like log lines: the host reads C strings, which end at a NUL, and a
    // name cut there could be another tool's.
    const pending = dispatch(
      jsonStringify(server) as string,
      jsonStringify(tool) as string,
      argsJson,
    )
    return reflectApply(promiseThen, pending, [
      (answerJson: string) => {
        const answer = jsonParse(answerJson) as CallAnswer
        if (answer.ok) return answer.value
        return rejected(answer.code, answer.message, site)
      },
    ]) as Promise<unknown>
  }

  /**
   * A name that is not in the bindings still goes to the host, which alone knows whether it is
   * a tool policy hides from this caller (TOOL_DENIED) or no tool at all (UNKNOWN_TOOL, with a
   * suggestion among the tools the caller can see). The host decides; the prelude never does.
   */
  function unknownTool(server: string, name: string): (args?: unknown) => Promise<unknown> {
    return reflectApply(functionBind, invoke, [undefined, server, name]) as (
      args?: unknown,
    ) => Promise<unknown>
  }

  function stub(server: string, tool: string, ident: string): unknown {
    const f = reflectApply(functionBind, invoke, [undefined, server, tool]) as (
      args?: unknown,
    ) => Promise<unknown>
    objectDefineProperty(f, 'name', { value: ident })
    return objectFreeze(f)
  }

  /** A frozen map behind a proxy whose only job is: an unknown name is asked of the host. */
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

  let reported = false
  const report = (rejectedFlag: 0 | 1, value: unknown): void => {
    if (reported) return
    reported = true
    settled(rejectedFlag, value)
  }

  return objectFreeze({
    run(body: () => Promise<unknown>): void {
      let pending: Promise<unknown>
      try {
        pending = body()
      } catch (e) {
        report(1, e)
        return
      }
      reflectApply(promiseThen, pending, [
        (v: unknown) => report(0, v),
        (e: unknown) => report(1, e),
      ])
    },
    serialize(value: unknown, boundsJson: string): string {
      const r = serializeValue(value, jsonParse(boundsJson) as SerializeBounds)
      let warnings = '['
      for (let i = 0; i < r.warnings.length; i++) {
        const w = r.warnings[i]!
        warnings +=
          (i === 0 ? '' : ',') + encode({ code: w.code, message: w.message, path: w.path })
      }
      warnings += ']'
      if (!r.ok) return encode({ code: r.code, message: r.message }, { ok: 'false', warnings })
      return encode({ json: r.json }, { ok: 'true', warnings })
    },
    describe(thrown: unknown): string {
      let d: DescribedError | undefined
      if (thrown !== null && typeof thrown === 'object' && !isProxy(thrown)) {
        d = reflectApply(weakMapGet, hostErrors, [thrown]) as DescribedError | undefined
      }
      d ??= describeThrown(thrown)
      return encode({ code: d.code, message: d.message, stack: d.stack })
    },
  })
}
