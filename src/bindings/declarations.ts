/**
 * Tool definitions → one `.d.ts` text declaring `tools.<server>.<tool>(args)`, plus the
 * per-tool fragments that search and the compact index reuse. Output is deterministic (sorted by
 * server, then identifier) so the committed bindings diff cleanly.
 *
 * @module
 */
import type { ToolAnnotations } from '../types.js'
import type { BindingProblem, BindingTool, SchemaLimits } from './model.js'
import { DEFAULT_SCHEMA_LIMITS } from './model.js'
import { commentText, firstSentence, jsDoc, pascalCase } from './emit.js'
import { isSafeIdentifier, printable, sanitizeIdentifier, TOOL_NAME_PATTERN } from './names.js'
import { convertRoot, TypeNames } from './schema.js'

/** Options of `generateDeclarations` and everything built on it. */
export interface DeclarationOptions {
  /** Caps on schema work per tool (RES-13); unset fields take `DEFAULT_SCHEMA_LIMITS`. */
  readonly limits?: Partial<SchemaLimits>
}

/** How many tools have typed results; `unknownOutputs` lists `server.tool` without `outputSchema`. */
export interface BindingsCoverage {
  tools: number
  typedOutputs: number
  unknownOutputs: string[]
}

/** The result of `generateDeclarations`. */
export interface Declarations {
  /** A global script declaring the named types and `declare const tools`. */
  dts: string
  problems: BindingProblem[]
  coverage: BindingsCoverage
}

/** One exposed tool, rendered. Internal to the module (search and the index reuse it). */
export interface ToolFragment {
  readonly tool: BindingTool
  readonly serverIdent: string
  /** `tools.memory.read_graph` */
  readonly path: string
  /** Type declarations the tool needs (input, output, `$ref` targets), each ending in `\n`. */
  readonly types: string[]
  /** Comment-safe JSDoc lines of the method. */
  readonly doc: string[]
  /** `read_graph(args?: Memory_ReadGraphInput): Promise<Memory_ReadGraphOutput>` */
  readonly signature: string
  readonly hasOutputType: boolean
  /** Top-level input properties, `?` suffixed when optional: for the compact index. */
  readonly argNames: string[]
  /** The same tool in one line per member, no JSDoc (`renderCompactDts`). */
  readonly compact: CompactFragment
}

/** A tool's compact form: what `search_tools` and a small-budget description show. */
export interface CompactFragment {
  /** The description's first sentence, comment-safe; `''` when there is none. */
  readonly summary: string
  /** `read_graph(args?: {}): Promise<{ entities: { name: string }[] }>`, types inline. */
  readonly signature: string
  /** Named types the signature refers to (recursive `$ref` targets only), each ending in `\n`. */
  readonly types: string[]
}

/**
 * The tools that may be exposed, sorted by server then identifier, with their server
 * identifiers. A tool whose name or identifier is unsafe is left out and reported: tools keep
 * their given identifiers (see `assignIdentifiers`), but an identifier the emitter cannot print
 * bare is refused, never escaped into existence. A second tool on one identifier is refused too.
 */
export function exposableTools(tools: readonly BindingTool[]): {
  accepted: Array<{ tool: BindingTool; serverIdent: string }>
  problems: BindingProblem[]
} {
  const problems: BindingProblem[] = []
  const accepted: Array<{ tool: BindingTool; serverIdent: string }> = []
  const seen = new Map<string, string>()
  const sorted = [...tools].sort(
    (a, b) => cmp(a.server, b.server) || cmp(a.ident, b.ident) || cmp(a.name, b.name),
  )
  for (const tool of sorted) {
    const label = `${printable(tool.server)}.${printable(tool.name)}`
    const server = sanitizeIdentifier(tool.server)
    if (
      server === undefined ||
      !TOOL_NAME_PATTERN.test(tool.name) ||
      !isSafeIdentifier(tool.ident)
    ) {
      problems.push({
        code: 'INVALID_NAME',
        severity: 'error',
        tool: label,
        message: `${label} is not exposed: its server name, tool name or identifier is outside the safe alphabet`,
      })
      continue
    }
    const key = `${server}.${tool.ident}`
    const previous = seen.get(key)
    if (previous !== undefined) {
      problems.push({
        code: 'NAME_COLLISION',
        severity: 'error',
        tool: `${previous}, ${label}`,
        message: `${previous} and ${label} both become tools.${key}; only the first is exposed`,
      })
      continue
    }
    seen.set(key, label)
    accepted.push({ tool, serverIdent: server })
  }
  return { accepted, problems }
}

/** Renders the fragment of every exposable tool (see `exposableTools`). */
export function buildFragments(
  tools: readonly BindingTool[],
  options: DeclarationOptions = {},
): { fragments: ToolFragment[]; problems: BindingProblem[] } {
  const limits: SchemaLimits = { ...DEFAULT_SCHEMA_LIMITS, ...options.limits }
  const names = new TypeNames()
  // The compact form is a separate text, so its `$ref` type names are claimed separately.
  const compactNames = new TypeNames()
  const { accepted, problems } = exposableTools(tools)
  const fragments = accepted.map(({ tool, serverIdent }) =>
    fragment(tool, serverIdent, { full: names, compact: compactNames }, limits, problems),
  )
  return { fragments, problems }
}

/**
 * Generates the TypeScript declarations of `tools`. Inputs and outputs are typed from the JSON
 * Schemas; a tool without `outputSchema` returns `Promise<unknown>` and is listed in
 * `coverage.unknownOutputs`. Anything the schema says that the types cannot is in `problems`.
 *
 * @example
 * const { dts, problems } = generateDeclarations(catalogTools)
 * // declare const tools: { readonly memory: { read_graph(args?: Memory_ReadGraphInput): Promise<…> } }
 */
export function generateDeclarations(
  tools: readonly BindingTool[],
  options: DeclarationOptions = {},
): Declarations {
  const { fragments, problems } = buildFragments(tools, options)
  return { dts: renderDts(fragments), problems, coverage: coverageOf(fragments) }
}

/** Options of `renderBindingsFile`. */
export interface BindingsFileOptions extends DeclarationOptions {
  /** Extra header lines (e.g. the lock file's hash); rendered as `//` comments. */
  readonly header?: string
}

/**
 * The complete text of the committed bindings file: a "generated; do not edit" header, a
 * coverage line and the declarations. The `sluice bindings` command only writes it out.
 */
export function renderBindingsFile(
  tools: readonly BindingTool[],
  options: BindingsFileOptions = {},
): { text: string; problems: BindingProblem[]; coverage: BindingsCoverage } {
  const { dts, problems, coverage } = generateDeclarations(tools, options)
  const lines = ['generated by `sluice bindings`; do not edit.']
  if (options.header !== undefined && options.header.trim() !== '') {
    lines.push(...commentText(options.header, 10_000).split('\n'))
  }
  const servers = new Set(tools.map((t) => t.server)).size
  lines.push(
    '',
    `${coverage.tools} tools from ${servers} servers; ${coverage.unknownOutputs.length} without outputSchema return unknown.`,
  )
  const head = lines.map((l) => (l === '' ? '//' : `// ${l}`)).join('\n')
  return { text: `${head}\n\n${dts}`, problems, coverage }
}

/** The dts of already-built fragments. */
export function renderDts(fragments: readonly ToolFragment[]): string {
  const types = fragments.flatMap((f) => f.types).join('\n')
  const byServer = new Map<string, ToolFragment[]>()
  for (const f of fragments)
    byServer.set(f.serverIdent, [...(byServer.get(f.serverIdent) ?? []), f])
  const servers = [...byServer].map(([ident, list]) => {
    const members = list.map((f) => `${jsDoc(f.doc, '    ')}    ${f.signature}`).join('\n')
    const original = list[0]!.tool.server
    const doc =
      original === ident ? `Tools of server \`${ident}\`.` : `Tools of server \`${original}\`.`
    return `  /** ${doc} */\n  readonly ${ident}: {\n${members}\n  }`
  })
  const body = servers.length === 0 ? '{}' : `{\n${servers.join('\n')}\n}`
  return `${types}${types === '' ? '' : '\n'}declare const tools: ${body}\n`
}

/**
 * The dts of already-built fragments in their compact form: a method per line with its types
 * inline and the first sentence of its description, no property docs. About half the tokens of
 * `renderDts`, and still what the guest type-checks against in spirit (same names, same shapes).
 */
export function renderCompactDts(fragments: readonly ToolFragment[]): string {
  const types = fragments.flatMap((f) => f.compact.types).join('')
  const byServer = new Map<string, ToolFragment[]>()
  for (const f of fragments)
    byServer.set(f.serverIdent, [...(byServer.get(f.serverIdent) ?? []), f])
  const servers = [...byServer].map(([ident, list]) => {
    const members = list.map((f) => `    ${compactMember(f)}`).join('\n')
    return `  ${ident}: {\n${members}\n  }`
  })
  const body = servers.length === 0 ? '{}' : `{\n${servers.join('\n')}\n}`
  return `${types}declare const tools: ${body}\n`
}

/** `tools.memory.read_graph(args?: {}): Promise<…> // Read the entire knowledge graph.` plus its named types. */
export function renderCompactSnippet(f: ToolFragment): string {
  const call = f.compact.signature.replace(/^[A-Za-z0-9_$]+/, f.path)
  const summary = f.compact.summary === '' ? '' : `/** ${f.compact.summary} */\n`
  return `${summary}${call}\n${f.compact.types.join('')}`
}

function compactMember(f: ToolFragment): string {
  const summary = f.compact.summary === '' ? '' : `/** ${f.compact.summary} */ `
  return `${summary}${f.compact.signature}`
}

/** A stand-alone rendering of one tool for `search_tools`: doc, call signature, then its types. */
export function renderToolSnippet(f: ToolFragment): string {
  const call = f.signature.replace(/^[A-Za-z0-9_$]+/, f.path)
  return `${jsDoc(f.doc, '')}${call}\n${f.types.join('')}`
}

/** Coverage of already-built fragments. */
export function coverageOf(fragments: readonly ToolFragment[]): BindingsCoverage {
  const unknownOutputs = fragments
    .filter((f) => !f.hasOutputType)
    .map((f) => `${f.tool.server}.${f.tool.name}`)
  return {
    tools: fragments.length,
    typedOutputs: fragments.length - unknownOutputs.length,
    unknownOutputs,
  }
}

function fragment(
  tool: BindingTool,
  serverIdent: string,
  registries: { full: TypeNames; compact: TypeNames },
  limits: SchemaLimits,
  problems: BindingProblem[],
): ToolFragment {
  const names = registries.full
  const label = `${tool.server}.${tool.name}`
  const prefix = `${pascalCase(serverIdent)}_${pascalCase(tool.ident)}`
  const def = tool.definition
  const types: string[] = []

  const inputName = names.claim(`${prefix}Input`)
  const inputDecls: string[] = []
  const input = convertRoot({
    tool: label,
    root: def.inputSchema,
    rootPointer: '/inputSchema',
    typePrefix: prefix,
    rootName: inputName,
    limits,
    names,
    problems,
    declarations: inputDecls,
  })
  types.push(`type ${inputName} = ${input}\n`, ...inputDecls)

  let outputName = 'unknown'
  const hasOutputType = isObject(def.outputSchema)
  if (hasOutputType) {
    outputName = names.claim(`${prefix}Output`)
    const outputDecls: string[] = []
    const output = convertRoot({
      tool: label,
      root: def.outputSchema,
      rootPointer: '/outputSchema',
      typePrefix: `${prefix}Out`,
      rootName: outputName,
      limits,
      names,
      problems,
      declarations: outputDecls,
    })
    types.push(`type ${outputName} = ${output}\n`, ...outputDecls)
  }

  const schema = isObject(def.inputSchema) ? def.inputSchema : {}
  const required = Array.isArray(schema.required) ? schema.required : []
  const properties = isObject(schema.properties) ? schema.properties : {}
  const optionalArgs =
    required.length === 0 &&
    !['$ref', 'anyOf', 'oneOf', 'allOf'].some((k) => k in schema) &&
    schema.type !== 'array'
  const argNames = Object.keys(properties).map((k) => (required.includes(k) ? k : `${k}?`))

  return {
    tool,
    serverIdent,
    path: `tools.${serverIdent}.${tool.ident}`,
    types,
    doc: toolDoc(tool, hasOutputType, limits),
    signature: `${tool.ident}(args${optionalArgs ? '?' : ''}: ${inputName}): Promise<${outputName}>`,
    hasOutputType,
    argNames,
    compact: compactFragment(tool, prefix, optionalArgs, registries.compact, limits),
  }
}

function compactFragment(
  tool: BindingTool,
  prefix: string,
  optionalArgs: boolean,
  names: TypeNames,
  limits: SchemaLimits,
): CompactFragment {
  const def = tool.definition
  const label = `${tool.server}.${tool.name}`
  const declarations: string[] = []
  // Problems were reported by the full conversion of the same schemas; do not repeat them.
  const convert = (root: unknown, pointer: string, suffix: string): string =>
    convertRoot({
      tool: label,
      root,
      rootPointer: pointer,
      typePrefix: `${prefix}${suffix}`,
      rootName: names.claim(`${prefix}${suffix}`),
      limits,
      names,
      problems: [],
      declarations,
      compact: true,
    })
  const input = convert(def.inputSchema, '/inputSchema', 'Input')
  const output = isObject(def.outputSchema)
    ? convert(def.outputSchema, '/outputSchema', 'Output')
    : 'unknown'
  return {
    summary: firstSentence(def.description),
    signature: `${tool.ident}(args${optionalArgs ? '?' : ''}: ${input}): Promise<${output}>`,
    types: declarations,
  }
}

function toolDoc(tool: BindingTool, hasOutputType: boolean, limits: SchemaLimits): string[] {
  const def = tool.definition
  const ann: ToolAnnotations = isObject(def.annotations) ? def.annotations : {}
  const max = limits.maxDescriptionChars
  const lines: string[] = []
  const title =
    typeof def.title === 'string'
      ? def.title
      : typeof ann.title === 'string'
        ? ann.title
        : undefined
  if (title !== undefined && title.trim() !== '') lines.push(commentText(title, 200))
  if (typeof def.description === 'string' && def.description.trim() !== '')
    lines.push(commentText(def.description, max))
  const tags: string[] = []
  if (tool.ident !== tool.name) tags.push(`Upstream name: "${tool.name}".`)
  if (ann.readOnlyHint === true) tags.push('@readonly')
  if (ann.destructiveHint === true && ann.readOnlyHint !== true) tags.push('@destructive')
  if (ann.idempotentHint === true) tags.push('@idempotent')
  if (ann.openWorldHint === true) tags.push('@openWorld')
  if (!hasOutputType)
    tags.push("@returns No outputSchema: the parsed JSON of the tool's text, else the text itself.")
  if (tags.length > 0 && lines.length > 0) lines.push('')
  return [...lines, ...tags]
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
