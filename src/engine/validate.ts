/**
 * Argument validation against a tool's `inputSchema`, on the host, before policy and before any
 * upstream call. Errors name the JSON path and what was expected, so the model can fix its call.
 *
 * @module
 */
import { createRequire } from 'node:module'
import type { ErrorObject, ValidateFunction } from 'ajv'
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
    ? describe(error)
    : { ok: false, path: '', message: 'arguments do not match the input schema' }
}

function describe(error: ErrorObject): { ok: false; message: string; path: string } {
  const path = jsonPath(error.instancePath)
  const p = error.params as Record<string, unknown>
  let what: string
  switch (error.keyword) {
    case 'required':
      return {
        ok: false,
        path: `${path}.${String(p.missingProperty)}`,
        message: `missing required field ${path}.${String(p.missingProperty)}`,
      }
    case 'additionalProperties':
      return {
        ok: false,
        path: `${path}.${String(p.additionalProperty)}`,
        message: `unexpected field ${path}.${String(p.additionalProperty)} (not in the tool's input schema)`,
      }
    case 'type':
      what = `expected ${String(p.type)}`
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
