/**
 * Argument validation against a tool's `inputSchema`, on the host, before policy and before any
 * upstream call. Errors name the JSON path and what was expected, so the model can fix its call.
 *
 * @module
 */
import { createRequire } from 'node:module'
import type { ErrorObject, ValidateFunction } from 'ajv'
import { nearest } from '../text.js'
import type { DefinitionHash } from '../types.js'

// ajv ships CommonJS with `export default` typings that NodeNext resolves awkwardly.
const require = createRequire(import.meta.url)
const Ajv2020 = require('ajv/dist/2020').default as new (opts: object) => AjvLike
const AjvDraft7 = require('ajv').default as new (opts: object) => AjvLike
const addFormats = require('ajv-formats').default as (ajv: AjvLike) => void

interface AjvLike {
  compile(schema: object): ValidateFunction
}

const OPTIONS = {
  strict: false,
  allErrors: false,
  validateFormats: true,
  // Upstream schemas are untrusted: never fetch a remote $ref (TP-06).
  loadSchema: undefined,
  addUsedSchema: false,
}

let ajv2020: AjvLike | undefined
let ajv7: AjvLike | undefined

function ajvFor(schema: Record<string, unknown>): AjvLike {
  const dialect = typeof schema.$schema === 'string' ? schema.$schema : ''
  if (/draft-0[467]/.test(dialect)) {
    if (!ajv7) {
      ajv7 = new AjvDraft7(OPTIONS)
      addFormats(ajv7)
    }
    return ajv7
  }
  if (!ajv2020) {
    ajv2020 = new Ajv2020(OPTIONS)
    addFormats(ajv2020)
  }
  return ajv2020
}

/** The outcome of validating one call's arguments. */
export type ArgsCheck = { ok: true } | { ok: false; message: string; path: string }

const cache = new Map<string, ValidateFunction | Error>()
const MAX_CACHE = 2048

/** Compiles (once per definition hash) and runs the validator of one tool's input schema. */
export function validateArgs(
  hash: DefinitionHash,
  schema: Record<string, unknown>,
  args: unknown,
): ArgsCheck {
  return check(hash, schema, args)
}

/**
 * Checks a tool's `structuredContent` against its **pinned** output schema (TP-09): an upstream
 * that changes what it returns behind an unchanged pin is caught here.
 */
export function validateOutput(
  hash: DefinitionHash,
  schema: Record<string, unknown>,
  value: unknown,
): ArgsCheck {
  const result = check(`${hash}#output`, schema, value)
  return result.ok ? result : { ...result, message: result.message.replace(/\bargs\b/g, 'result') }
}

function check(key: string, schema: Record<string, unknown>, args: unknown): ArgsCheck {
  let validate = cache.get(key)
  if (validate === undefined) {
    try {
      const { $schema: _dialect, ...rest } = schema
      validate = ajvFor(schema).compile(rest)
    } catch (cause) {
      validate = cause instanceof Error ? cause : new Error(String(cause))
    }
    if (cache.size >= MAX_CACHE) cache.clear()
    cache.set(key, validate)
  }
  if (validate instanceof Error) {
    // A schema we cannot compile cannot vouch for any argument: fail closed.
    return {
      ok: false,
      path: '',
      message: 'the tool input schema cannot be validated; the call was not made',
    }
  }
  if (validate(args)) return { ok: true }
  const error = validate.errors?.[0]
  return error
    ? describe(error, schema, args)
    : { ok: false, path: '', message: 'arguments do not match the input schema' }
}

/**
 * The first error, named so that the model can fix it: the field, what was expected, what it
 * got, and for a missing field a near-miss among the fields that were sent (`ID` for `id`).
 */
function describe(
  error: ErrorObject,
  schema: Record<string, unknown>,
  args: unknown,
): { ok: false; message: string; path: string } {
  const path = jsonPath(error.instancePath)
  const p = error.params as Record<string, unknown>
  const at = subschema(schema, error.instancePath)
  let what: string
  switch (error.keyword) {
    case 'required': {
      const missing = String(p.missingProperty)
      const type = typeName(properties(at)[missing])
      const sent = objectKeys(valueAt(args, error.instancePath))
      const extra = sent.filter((k) => !(k in properties(at)))
      const near = nearest(missing, extra)
      return {
        ok: false,
        path: `${path}.${missing}`,
        message: `missing required field ${path}.${missing}${type === undefined ? '' : ` (${type})`}${near === undefined ? '' : `; ${path}.${near} was sent: did you mean ${missing}?`}`,
      }
    }
    case 'additionalProperties': {
      const extra = String(p.additionalProperty)
      const known = Object.keys(properties(at))
      const near = nearest(extra, known)
      return {
        ok: false,
        path: `${path}.${extra}`,
        message: `unexpected field ${path}.${extra} (not in the tool's input schema; ${near === undefined ? `fields: ${known.slice(0, 12).join(', ') || 'none'}` : `did you mean ${near}?`})`,
      }
    }
    case 'type':
      what = `expected ${String(p.type)}, got ${kindOf(valueAt(args, error.instancePath))}`
      break
    case 'enum':
      what = `expected one of ${JSON.stringify(p.allowedValues)}`
      break
    case 'const':
      what = `expected ${JSON.stringify(p.allowedValue)}`
      break
    default:
      what = error.message ?? 'invalid'
  }
  return { ok: false, path, message: `${path}: ${what}` }
}

/** The schema that applies at a JSON pointer, following `properties` and `items` only. */
function subschema(schema: Record<string, unknown>, pointer: string): Record<string, unknown> {
  let at: unknown = schema
  for (const seg of pointerSegments(pointer)) {
    const o = (at ?? {}) as Record<string, unknown>
    at = /^\d+$/.test(seg) && o.items !== undefined ? o.items : properties(o)[seg]
  }
  return at !== null && typeof at === 'object' ? (at as Record<string, unknown>) : {}
}

function properties(schema: Record<string, unknown>): Record<string, unknown> {
  const props = schema.properties
  return props !== null && typeof props === 'object' ? (props as Record<string, unknown>) : {}
}

function valueAt(value: unknown, pointer: string): unknown {
  let at = value
  for (const seg of pointerSegments(pointer)) {
    if (at === null || typeof at !== 'object') return undefined
    at = (at as Record<string, unknown>)[seg]
  }
  return at
}

function objectKeys(value: unknown): string[] {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? Object.keys(value)
    : []
}

/** A short type name for a property schema: `string`, `number[]`, `"a" | "b"`. */
export function typeName(schema: unknown): string | undefined {
  if (schema === null || typeof schema !== 'object') return undefined
  const s = schema as Record<string, unknown>
  if (Array.isArray(s.enum))
    return s.enum
      .slice(0, 5)
      .map((v) => JSON.stringify(v))
      .join(' | ')
  if (s.type === 'array') return `${typeName(s.items) ?? 'unknown'}[]`
  if (typeof s.type === 'string') return s.type
  if (Array.isArray(s.type)) return s.type.join(' | ')
  return undefined
}

/** What the value is, in JSON Schema's words, without quoting it (values may be secret). */
function kindOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number'
  return typeof value
}

/**
 * `{ id: string; limit?: number }`: the shape of a tool's arguments for a message, from the
 * top-level properties of its input schema.
 */
export function argumentShape(schema: Record<string, unknown>): string {
  const props = properties(schema)
  const required = new Set(Array.isArray(schema.required) ? schema.required.map(String) : [])
  const fields = Object.keys(props)
    .slice(0, 8)
    .map((k) => `${k}${required.has(k) ? '' : '?'}: ${typeName(props[k]) ?? 'unknown'}`)
  if (Object.keys(props).length > 8) fields.push('…')
  return fields.length === 0 ? '{}' : `{ ${fields.join('; ')} }`
}

/**
 * Argument names the schema does not declare, when it does not say that others are welcome:
 * the upstream ignores them, so the model's intent is lost without an error.
 */
export function undeclaredFields(schema: Record<string, unknown>, args: object): string[] {
  if (schema.additionalProperties !== undefined || schema.properties === undefined) return []
  const props = properties(schema)
  return Object.keys(args).filter((k) => !Object.hasOwn(props, k))
}

function pointerSegments(pointer: string): string[] {
  if (pointer === '') return []
  return pointer
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/** `/entities/0/name` → `args.entities[0].name` */
function jsonPath(pointer: string): string {
  if (pointer === '') return 'args'
  return (
    'args' +
    pointer
      .split('/')
      .slice(1)
      .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((seg) =>
        /^\d+$/.test(seg)
          ? `[${seg}]`
          : /^[A-Za-z_$][\w$]*$/.test(seg)
            ? `.${seg}`
            : `[${JSON.stringify(seg)}]`,
      )
      .join('')
  )
}
