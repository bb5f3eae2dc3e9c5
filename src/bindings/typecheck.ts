/**
 * Type-checks the model's code against the tool declarations with the TypeScript 6 compiler API,
 * entirely in memory, and returns diagnostics in the model's own coordinates with "did you
 * mean" hints. Off the hot path (on failure or on request), but cached so it is not slow: the
 * lib files are parsed once per process and the declarations once per distinct text.
 *
 * @module
 */
import ts from 'typescript'
import { nearest } from '../text.js'
import { sandboxAdvice } from './sandbox-globals.js'
import type { Diagnostic } from '../types.js'
import { DEFAULT_MAX_DIAGNOSTICS } from './typecheck-lazy.js'

/** Options of `typecheckCode`. */
export interface TypecheckOptions {
  /** Most diagnostics returned (the first ones by position). Default 10. */
  readonly maxDiagnostics?: number
  /**
   * Report uses of `unknown` results (TS2571, TS18046). Off by default: tools without
   * `outputSchema` return `unknown`, and code that reads their JSON is fine at run time.
   */
  readonly reportUnknownAccess?: boolean
}

/** Default of `TypecheckOptions.maxDiagnostics`. */

const DIR = '/sluice/'
const MODEL_FILE = `${DIR}model.ts`
const TOOLS_FILE = `${DIR}tools.d.ts`
const PRELUDE_FILE = `${DIR}prelude.d.ts`
// The model's code is an async function body; one wrapper line goes before it.
const WRAP_HEAD = 'async function __sluice_main() {\n'
const WRAP_TAIL = '\n}\n'
// What the guest has besides `tools` (DESIGN.md §3 "Guest API").
const PRELUDE = `declare const console: {
  log(...data: unknown[]): void
  info(...data: unknown[]): void
  warn(...data: unknown[]): void
  error(...data: unknown[]): void
}
`

/**
 * Strict, with two deliberate relaxations for model-written code that is valid at run time:
 * implicit `any` is allowed and `catch (e)` binds `any` (so `e.code` type-checks).
 */
const COMPILER_OPTIONS: ts.CompilerOptions = Object.freeze({
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2023.d.ts'],
  strict: true,
  noImplicitAny: false,
  useUnknownInCatchVariables: false,
  noEmit: true,
  types: [],
  skipLibCheck: true,
  moduleDetection: ts.ModuleDetectionKind.Legacy,
  allowUnreachableCode: true,
  allowUnusedLabels: true,
})

const defaultLib = ts.getDefaultLibFilePath(COMPILER_OPTIONS)
const libDir = defaultLib.slice(
  0,
  Math.max(defaultLib.lastIndexOf('/'), defaultLib.lastIndexOf('\\')) + 1,
)
const libCache = new Map<string, ts.SourceFile>()
const MAX_CACHED_DTS = 16
const dtsCache = new Map<string, ts.SourceFile>()
let preludeFile: ts.SourceFile | undefined

function preludeSourceFile(): ts.SourceFile {
  preludeFile ??= ts.createSourceFile(PRELUDE_FILE, PRELUDE, ts.ScriptTarget.ES2022, true)
  return preludeFile
}
let lastProgram: { dts: string; program: ts.Program } | undefined

/**
 * Diagnostics of `code` (an async function body) against `dts` (from `generateDeclarations`).
 * Lines and columns are 1-based in the model's source; messages are TypeScript's, with the
 * type of `tools.<server>` shortened; `hint` suggests the nearest tool or field name.
 *
 * @example
 * typecheckCode('await tools.memory.read_grph()', dts)
 * // [{ line: 1, column: 20, message: "Property 'read_grph' does not exist on tools.memory.",
 * //    hint: 'did you mean tools.memory.read_graph?' }]
 */
export function typecheckCode(
  code: string,
  dts: string,
  options: TypecheckOptions = {},
): Diagnostic[] {
  const max = options.maxDiagnostics ?? DEFAULT_MAX_DIAGNOSTICS
  if (!Number.isInteger(max) || max < 0)
    throw new TypeError('typecheckCode: maxDiagnostics must be a non-negative integer')
  const model = ts.createSourceFile(
    MODEL_FILE,
    `${WRAP_HEAD}${code}${WRAP_TAIL}`,
    ts.ScriptTarget.ES2022,
    true,
  )
  const files = new Map<string, ts.SourceFile>([
    [MODEL_FILE, model],
    [TOOLS_FILE, dtsFile(dts)],
    [PRELUDE_FILE, preludeSourceFile()],
  ])
  const oldProgram = lastProgram?.dts === dts ? lastProgram.program : undefined
  const program = ts.createProgram({
    rootNames: [...files.keys()],
    options: COMPILER_OPTIONS,
    host: host(files),
    oldProgram,
  })
  lastProgram = { dts, program }
  const checker = program.getTypeChecker()
  const raw = [...program.getSyntacticDiagnostics(model), ...program.getSemanticDiagnostics(model)]
  const modelLines = code.split(/\r\n|\r|\n/).length
  const out: Diagnostic[] = []
  for (const d of raw) {
    if (!options.reportUnknownAccess && (d.code === 2571 || d.code === 18046)) continue
    const start = d.start ?? 0
    const pos = model.getLineAndCharacterOfPosition(start)
    // Line 0 is the wrapper's head; a position past the code is its tail.
    const line = Math.min(Math.max(pos.line, 1), modelLines)
    const column = pos.line < 1 || pos.line > modelLines ? 1 : pos.character + 1
    const diagnostic: Diagnostic = {
      line,
      column,
      message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
    }
    explain(diagnostic, d, model, checker, start)
    out.push(diagnostic)
  }
  out.sort((a, b) => a.line - b.line || a.column - b.column)
  return out.slice(0, max)
}

/**
 * Diagnostics of the declarations themselves (the lib files are trusted and skipped). A correct
 * `generateDeclarations` output has none; `sluice bindings` and the tests use this as a guard.
 */
export function checkDeclarations(dts: string): Diagnostic[] {
  const file = ts.createSourceFile(`${DIR}tools.ts`, dts, ts.ScriptTarget.ES2022, true)
  const files = new Map<string, ts.SourceFile>([[file.fileName, file]])
  const options = {
    ...COMPILER_OPTIONS,
    noImplicitAny: true,
    skipLibCheck: false,
    skipDefaultLibCheck: true,
  }
  const program = ts.createProgram({ rootNames: [file.fileName], options, host: host(files) })
  return [
    ...program.getSyntacticDiagnostics(file),
    ...program.getSemanticDiagnostics(file),
    ...program.getGlobalDiagnostics(),
  ].map((d) => {
    const pos = file.getLineAndCharacterOfPosition(d.start ?? 0)
    return {
      line: pos.line + 1,
      column: pos.character + 1,
      message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
    }
  })
}

function dtsFile(dts: string): ts.SourceFile {
  const cached = dtsCache.get(dts)
  if (cached !== undefined) {
    dtsCache.delete(dts)
    dtsCache.set(dts, cached)
    return cached
  }
  const file = ts.createSourceFile(TOOLS_FILE, dts, ts.ScriptTarget.ES2022, true)
  dtsCache.set(dts, file)
  if (dtsCache.size > MAX_CACHED_DTS) dtsCache.delete(dtsCache.keys().next().value!)
  return file
}

function libFile(fileName: string): ts.SourceFile | undefined {
  const base = fileName.slice(Math.max(fileName.lastIndexOf('/'), fileName.lastIndexOf('\\')) + 1)
  if (!/^lib\.[a-z0-9.]+\.d\.ts$/.test(base)) return undefined
  let file = libCache.get(base)
  if (file === undefined) {
    const text = ts.sys.readFile(`${libDir}${base}`)
    if (text === undefined) return undefined
    file = ts.createSourceFile(`${libDir}${base}`, text, ts.ScriptTarget.ES2022, false)
    libCache.set(base, file)
  }
  return file
}

function host(files: ReadonlyMap<string, ts.SourceFile>): ts.CompilerHost {
  return {
    getSourceFile: (fileName) => files.get(fileName) ?? libFile(fileName),
    getDefaultLibFileName: () => `${libDir}lib.es2023.d.ts`,
    getDefaultLibLocation: () => libDir,
    writeFile: () => undefined,
    getCurrentDirectory: () => DIR,
    getDirectories: () => [],
    fileExists: (fileName) => files.has(fileName) || libFile(fileName) !== undefined,
    readFile: (fileName) => files.get(fileName)?.text ?? libFile(fileName)?.text,
    getCanonicalFileName: (fileName) => fileName,
    useCaseSensitiveFileNames: () => true,
    getNewLine: () => '\n',
  }
}

/** Adds a hint (and a shorter message) for the diagnostics models most often cause. */
function explain(
  diagnostic: Diagnostic,
  d: ts.Diagnostic,
  model: ts.SourceFile,
  checker: ts.TypeChecker,
  start: number,
): void {
  const node = tokenAt(model, start)
  const suggested = /Did you mean(?: to write)? '([^']+)'\?/.exec(diagnostic.message)?.[1]
  switch (d.code) {
    case 2339: // Property 'x' does not exist on type 'T'.
    case 2551: {
      // … Did you mean 'y'?
      if (
        node === undefined ||
        !ts.isIdentifier(node) ||
        !ts.isPropertyAccessExpression(node.parent)
      )
        return
      const path = toolsPath(node.parent.expression)
      const known = propertyNames(checker, checker.getTypeAtLocation(node.parent.expression))
      const best = suggested ?? nearest(node.text, known)
      if (path !== undefined) {
        diagnostic.message = `Property '${node.text}' does not exist on ${path}.`
        diagnostic.hint =
          best !== undefined
            ? `did you mean ${path}.${best}?`
            : `${path} has: ${known.slice(0, 20).join(', ')}`
      } else if (best !== undefined) {
        diagnostic.hint = `did you mean '${best}'?`
      }
      return
    }
    case 2353: // Object literal may only specify known properties, and 'x' does not exist in type 'T'.
    case 2561: {
      // … Did you mean to write 'y'?
      if (node === undefined || (!ts.isIdentifier(node) && !ts.isStringLiteral(node))) return
      const literal = node.parent?.parent
      if (literal === undefined || !ts.isObjectLiteralExpression(literal)) return
      const type = checker.getContextualType(literal)
      const known = type === undefined ? [] : propertyNames(checker, type)
      const best = suggested ?? nearest(node.text, known)
      diagnostic.hint =
        best !== undefined
          ? `did you mean '${best}'?`
          : known.length > 0
            ? `known fields: ${known.slice(0, 20).join(', ')}`
            : undefined
      if (diagnostic.hint === undefined) delete diagnostic.hint
      return
    }
    case 2741: // Property 'x' is missing in type 'S' but required in type 'T'.
    case 2739: // Type 'S' is missing the following properties from type 'T': …
    case 2345: // Argument of type 'S' is not assignable to parameter of type 'T'.
    case 2322: {
      // Type 'S' is not assignable to type 'T'.
      if (
        node !== undefined &&
        ts.isIdentifier(node) &&
        ts.isPropertyAssignment(node.parent) &&
        node.parent.name === node
      ) {
        const expected = checker.getContextualType(node.parent.initializer)
        if (expected !== undefined)
          diagnostic.hint = `field '${node.text}' expects ${checker.typeToString(expected)}`
        return
      }
      const literal = node === undefined ? undefined : enclosingObjectLiteral(node)
      if (literal === undefined) return
      const type = checker.getContextualType(literal)
      if (type === undefined) return
      const required = type
        .getProperties()
        .filter((p) => (p.flags & ts.SymbolFlags.Optional) === 0)
        .map(
          (p) =>
            `${p.name}: ${checker.typeToString(checker.getTypeOfSymbolAtLocation(p, literal))}`,
        )
      if (required.length > 0 && /missing/.test(diagnostic.message))
        diagnostic.hint = `required: ${required.join('; ')}`
      return
    }
    case 2304: // Cannot find name 'x'.
    case 2552: // Cannot find name 'x'. Did you mean 'y'?
    case 2580: // Cannot find name 'require'. Do you need to install type definitions for node? …
    case 2591: // … and then add 'node' to the types field in your tsconfig.
    case 2584: // … Try changing the 'lib' compiler option to include 'dom'.
    case 2582: // … type definitions for a test runner?
    case 2583: {
      // … Try changing the 'lib' compiler option to a later version.
      if (node === undefined || !ts.isIdentifier(node)) return
      const advice = sandboxAdvice(node.text)
      if (advice !== undefined) {
        // TypeScript's own advice (install @types/node, change lib) does not apply here.
        diagnostic.message = `Cannot find name '${node.text}'.`
        diagnostic.hint = advice
      } else if (suggested !== undefined) {
        diagnostic.hint = `did you mean '${suggested}'?`
      } else if (d.code !== 2304) {
        diagnostic.message = `Cannot find name '${node.text}'.`
      }
      return
    }
    case 1308: // 'await' expressions are only allowed within async functions …
      diagnostic.hint =
        'mark the enclosing function async, e.g. ids.map(async (id) => await …), and await Promise.all(…) of what it returns'
      return
    default:
      return
  }
}

/** `tools.memory` for an expression that is `tools` or `tools.<server>`, else undefined. */
function toolsPath(expr: ts.Expression): string | undefined {
  if (ts.isIdentifier(expr) && expr.text === 'tools') return 'tools'
  if (
    ts.isPropertyAccessExpression(expr) &&
    ts.isIdentifier(expr.expression) &&
    expr.expression.text === 'tools'
  ) {
    return `tools.${expr.name.text}`
  }
  return undefined
}

function propertyNames(checker: ts.TypeChecker, type: ts.Type): string[] {
  return checker
    .getApparentType(type)
    .getProperties()
    .map((p) => p.name)
    .filter((n) => !n.startsWith('__'))
}

function enclosingObjectLiteral(node: ts.Node): ts.ObjectLiteralExpression | undefined {
  for (let n: ts.Node | undefined = node; n !== undefined; n = n.parent) {
    if (ts.isObjectLiteralExpression(n)) return n
    if (ts.isStatement(n)) return undefined
  }
  return undefined
}

function tokenAt(file: ts.SourceFile, position: number): ts.Node | undefined {
  let found: ts.Node | undefined
  const visit = (node: ts.Node): void => {
    if (position < node.getStart(file) || position >= node.getEnd()) return
    found = node
    ts.forEachChild(node, visit)
  }
  ts.forEachChild(file, visit)
  return found
}
