/**
 * What changes between the signed lock and the catalogue that would replace it, for a review in
 * a pull request (Markdown) or a CI gate (JSON): servers and tools added and removed, a changed
 * description (the rug-pull signal), input schemas widened or narrowed, annotations that lost
 * `readOnlyHint` or gained `destructiveHint`, new secrets, and how each risk score moved.
 *
 * @module
 */
import { canonicalJson } from './canonical.js'
import type { LockFile, LockServerEntry, LockSource, LockTool } from './lock.js'
import type { Risk } from './risk.js'

export interface Change<T> {
  from: T
  to: T
}

export interface AnnotationChange {
  key: string
  from?: unknown
  to?: unknown
  /** The changes a reviewer must not miss. */
  signal?: 'readOnlyHint turned off' | 'destructiveHint turned on' | 'openWorldHint turned on'
}

export interface SchemaChange {
  /** Accepts more than before: a new property, a field no longer required, a wider type. */
  widened: string[]
  /** Accepts less: a property gone, a field now required, a narrower type. */
  narrowed: string[]
}

export interface ToolChange {
  tool: string
  /** A changed description is how a rug pull tells the model to do something else. */
  description?: Change<string | undefined>
  title?: Change<string | undefined>
  inputSchema?: SchemaChange
  outputSchemaChanged?: boolean
  annotations?: AnnotationChange[]
  risk?: Change<Risk | undefined>
}

export interface ServerChange {
  server: string
  version?: Change<string>
  source?: Change<string>
  secretsAdded: string[]
  secretsRemoved: string[]
  toolsAdded: Array<{ tool: string; risk?: Risk }>
  toolsRemoved: string[]
  tools: ToolChange[]
  risk?: Change<Risk | undefined>
}

export interface LockDiff {
  changed: boolean
  /** Whether a lock existed to compare with. */
  base: 'lock' | 'none'
  serversAdded: Array<{
    server: string
    version: string
    source: string
    tools: string[]
    secrets: string[]
    risk?: Risk
  }>
  serversRemoved: string[]
  servers: ServerChange[]
}

/** How a server runs, on one line. */
export function describeSource(source: LockSource): string {
  return source.type === 'http' ? source.url : [source.command, ...source.args].join(' ')
}

/** The version a reviewer knows a server by: the registry's, else what the server reports. */
function versionOf(entry: LockServerEntry): string {
  return entry.origin
    ? `${entry.origin.name}@${entry.origin.version}`
    : `${entry.server.name} ${entry.server.version}`
}

const same = (a: unknown, b: unknown): boolean =>
  canonicalJson(a ?? null) === canonicalJson(b ?? null)

/** Compares the lock in force (`base`, absent when there is none yet) with the next one. */
export function diffLocks(base: LockFile | undefined, next: LockFile): LockDiff {
  const before = base?.servers ?? {}
  const after = next.servers
  const diff: LockDiff = {
    changed: false,
    base: base ? 'lock' : 'none',
    serversAdded: [],
    serversRemoved: [],
    servers: [],
  }
  for (const name of Object.keys(after).sort()) {
    const entry = after[name]!
    if (before[name] === undefined) {
      diff.serversAdded.push({
        server: name,
        version: versionOf(entry),
        source: describeSource(entry.source),
        tools: Object.keys(entry.tools).sort(),
        secrets: entry.secrets ?? [],
        ...(entry.risk ? { risk: entry.risk } : {}),
      })
    }
  }
  for (const name of Object.keys(before).sort())
    if (after[name] === undefined) diff.serversRemoved.push(name)
  for (const name of Object.keys(after).sort()) {
    const old = before[name]
    if (old === undefined) continue
    const change = diffServer(name, old, after[name]!)
    if (change !== undefined) diff.servers.push(change)
  }
  diff.changed = diff.serversAdded.length + diff.serversRemoved.length + diff.servers.length > 0
  return diff
}

function diffServer(
  name: string,
  old: LockServerEntry,
  now: LockServerEntry,
): ServerChange | undefined {
  const change: ServerChange = {
    server: name,
    secretsAdded: [],
    secretsRemoved: [],
    toolsAdded: [],
    toolsRemoved: [],
    tools: [],
  }
  const v0 = versionOf(old)
  const v1 = versionOf(now)
  if (v0 !== v1) change.version = { from: v0, to: v1 }
  const s0 = describeSource(old.source)
  const s1 = describeSource(now.source)
  if (s0 !== s1) change.source = { from: s0, to: s1 }
  const secrets0 = new Set(old.secrets ?? [])
  const secrets1 = new Set(now.secrets ?? [])
  change.secretsAdded = [...secrets1].filter((s) => !secrets0.has(s)).sort()
  change.secretsRemoved = [...secrets0].filter((s) => !secrets1.has(s)).sort()
  for (const tool of Object.keys(now.tools).sort()) {
    const pin = old.tools[tool]
    if (pin === undefined) {
      const risk = now.tools[tool]!.risk
      change.toolsAdded.push({ tool, ...(risk ? { risk } : {}) })
      continue
    }
    const t = diffTool(tool, pin, now.tools[tool]!)
    if (t !== undefined) change.tools.push(t)
  }
  change.toolsRemoved = Object.keys(old.tools)
    .filter((t) => now.tools[t] === undefined)
    .sort()
  if (!same(old.risk, now.risk)) change.risk = { from: old.risk, to: now.risk }
  const changed =
    change.version !== undefined ||
    change.source !== undefined ||
    change.secretsAdded.length +
      change.secretsRemoved.length +
      change.toolsAdded.length +
      change.toolsRemoved.length +
      change.tools.length >
      0 ||
    change.risk !== undefined
  return changed ? change : undefined
}

function diffTool(tool: string, old: LockTool, now: LockTool): ToolChange | undefined {
  const a = old.definition
  const b = now.definition
  const change: ToolChange = { tool }
  if (a.description !== b.description)
    change.description = { from: a.description, to: b.description }
  if (a.title !== b.title) change.title = { from: a.title, to: b.title }
  if (!same(a.inputSchema, b.inputSchema))
    change.inputSchema = diffSchema(a.inputSchema, b.inputSchema)
  if (!same(a.outputSchema, b.outputSchema)) change.outputSchemaChanged = true
  const annotations = diffAnnotations(
    (a.annotations ?? {}) as Record<string, unknown>,
    (b.annotations ?? {}) as Record<string, unknown>,
  )
  if (annotations.length > 0) change.annotations = annotations
  if (!same(old.risk, now.risk)) change.risk = { from: old.risk, to: now.risk }
  return Object.keys(change).length > 1 ? change : undefined
}

function diffAnnotations(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): AnnotationChange[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
  const out: AnnotationChange[] = []
  for (const key of keys) {
    if (same(a[key], b[key])) continue
    const change: AnnotationChange = { key }
    if (a[key] !== undefined) change.from = a[key]
    if (b[key] !== undefined) change.to = b[key]
    if (key === 'readOnlyHint' && a[key] === true && b[key] !== true)
      change.signal = 'readOnlyHint turned off'
    if (key === 'destructiveHint' && a[key] !== true && b[key] === true)
      change.signal = 'destructiveHint turned on'
    if (key === 'openWorldHint' && a[key] !== true && b[key] === true)
      change.signal = 'openWorldHint turned on'
    out.push(change)
  }
  return out
}

type Schema = Record<string, unknown>

/**
 * Widened or narrowed, field by field, at the top level of an object schema: properties added
 * or removed, `required` gained or lost, `additionalProperties` opened or closed, a property's
 * type, enum or bounds changed. Anything else that differs is reported as changed both ways.
 */
export function diffSchema(before: unknown, after: unknown): SchemaChange {
  const a = (before ?? {}) as Schema
  const b = (after ?? {}) as Schema
  const widened: string[] = []
  const narrowed: string[] = []
  const pa = (a.properties ?? {}) as Record<string, Schema>
  const pb = (b.properties ?? {}) as Record<string, Schema>
  const ra = new Set((a.required ?? []) as string[])
  const rb = new Set((b.required ?? []) as string[])
  for (const key of Object.keys(pb).sort()) {
    if (pa[key] === undefined)
      widened.push(`new property ${key}${rb.has(key) ? ' (required)' : ''}`)
  }
  for (const key of Object.keys(pa).sort())
    if (pb[key] === undefined) narrowed.push(`property ${key} removed`)
  for (const key of [...rb].sort())
    if (!ra.has(key) && pa[key] !== undefined) narrowed.push(`${key} is now required`)
  for (const key of [...ra].sort())
    if (!rb.has(key) && pb[key] !== undefined) widened.push(`${key} is no longer required`)
  const closed = (s: Schema) => s.additionalProperties === false
  if (closed(a) && !closed(b))
    widened.push('additionalProperties no longer false: accepts fields it does not name')
  if (!closed(a) && closed(b)) narrowed.push('additionalProperties: false')
  for (const key of Object.keys(pb).sort()) {
    const x = pa[key]
    const y = pb[key]
    if (x === undefined || y === undefined || same(x, y)) continue
    const t0 = types(x)
    const t1 = types(y)
    if (!same(t0, t1)) {
      if (t1.every((t) => t0.includes(t)))
        narrowed.push(`${key}: type ${t0.join('|')} → ${t1.join('|')}`)
      else if (t0.every((t) => t1.includes(t)))
        widened.push(`${key}: type ${t0.join('|')} → ${t1.join('|')}`)
      else {
        widened.push(`${key}: type ${t0.join('|')} → ${t1.join('|')}`)
        narrowed.push(`${key}: type ${t0.join('|')} → ${t1.join('|')}`)
      }
      continue
    }
    const e0 = x.enum as unknown[] | undefined
    const e1 = y.enum as unknown[] | undefined
    if (!same(e0, e1)) {
      if (e1 === undefined) widened.push(`${key}: enum removed`)
      else if (e0 === undefined) narrowed.push(`${key}: enum ${JSON.stringify(e1)}`)
      else {
        const added = e1.filter((v) => !e0.some((w) => same(v, w)))
        const removed = e0.filter((v) => !e1.some((w) => same(v, w)))
        if (added.length > 0) widened.push(`${key}: enum adds ${JSON.stringify(added)}`)
        if (removed.length > 0) narrowed.push(`${key}: enum drops ${JSON.stringify(removed)}`)
      }
      continue
    }
    widened.push(`${key}: schema changed`)
    narrowed.push(`${key}: schema changed`)
  }
  const known = new Set(['properties', 'required', 'additionalProperties', 'type', '$schema'])
  for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (known.has(key) || same(a[key], b[key])) continue
    widened.push(`${key} changed`)
    narrowed.push(`${key} changed`)
  }
  return { widened, narrowed }
}

function types(schema: Schema): string[] {
  const t = schema.type
  if (Array.isArray(t)) return [...(t as string[])].sort()
  return typeof t === 'string' ? [t] : ['any']
}

const code = (text: string): string => `\`${text.replace(/`/g, "'")}\``
const riskText = (risk: Risk | undefined): string =>
  risk ? `${risk.level} ${risk.score.toFixed(1)}` : 'not scored'
const quote = (text: string | undefined): string =>
  text === undefined ? '_(none)_' : `> ${text.replace(/\r?\n/g, ' ').slice(0, 2000)}`

/** The diff as Markdown, for a pull request. */
export function renderDiffMarkdown(diff: LockDiff, lockPath: string): string {
  const lines: string[] = ['# Catalogue changes', '']
  lines.push(
    diff.base === 'none'
      ? `No lock at ${code(lockPath)} yet: everything is new.`
      : `Against the lock ${code(lockPath)}.`,
    '',
  )
  if (!diff.changed) {
    lines.push('Nothing changed.', '')
    return lines.join('\n')
  }
  if (diff.serversAdded.length > 0) {
    lines.push('## Servers added', '')
    for (const s of diff.serversAdded) {
      lines.push(`- ${code(s.server)}: ${s.version}, risk **${riskText(s.risk)}**`)
      lines.push(`  - runs ${code(s.source)}`)
      if (s.secrets.length > 0) lines.push(`  - **needs secrets**: ${s.secrets.join(', ')}`)
      lines.push(`  - tools: ${s.tools.map(code).join(', ') || '_(none)_'}`)
    }
    lines.push('')
  }
  if (diff.serversRemoved.length > 0) {
    lines.push('## Servers removed', '', ...diff.serversRemoved.map((s) => `- ${code(s)}`), '')
  }
  for (const s of diff.servers) {
    lines.push(
      `## ${code(s.server)}${s.version ? `: ${s.version.from} → ${s.version.to}` : ''}`,
      '',
    )
    if (s.source) lines.push(`- source: ${code(s.source.from)} → ${code(s.source.to)}`)
    if (s.secretsAdded.length > 0)
      lines.push(`- **new secrets required**: ${s.secretsAdded.join(', ')}`)
    if (s.secretsRemoved.length > 0)
      lines.push(`- secrets no longer needed: ${s.secretsRemoved.join(', ')}`)
    if (s.risk) lines.push(`- risk: ${riskText(s.risk.from)} → **${riskText(s.risk.to)}**`)
    for (const t of s.toolsAdded)
      lines.push(`- tool added: ${code(t.tool)}, risk **${riskText(t.risk)}**`)
    for (const t of s.toolsRemoved) lines.push(`- tool removed: ${code(t)}`)
    for (const t of s.tools) {
      lines.push(`- tool ${code(t.tool)}:`)
      if (t.description) {
        lines.push(
          '  - **description changed** (a rug pull rewrites it):',
          '',
          `    ${quote(t.description.from)}`,
          '',
          `    ${quote(t.description.to)}`,
          '',
        )
      }
      if (t.title) lines.push(`  - title: ${t.title.from ?? '(none)'} → ${t.title.to ?? '(none)'}`)
      if (t.inputSchema) {
        if (t.inputSchema.widened.length > 0)
          lines.push(`  - input schema **widened**: ${t.inputSchema.widened.join('; ')}`)
        if (t.inputSchema.narrowed.length > 0)
          lines.push(`  - input schema narrowed: ${t.inputSchema.narrowed.join('; ')}`)
      }
      if (t.outputSchemaChanged) lines.push('  - output schema changed')
      for (const a of t.annotations ?? []) {
        const text = `annotations.${a.key}: ${JSON.stringify(a.from ?? null)} → ${JSON.stringify(a.to ?? null)}`
        lines.push(`  - ${a.signal ? `**${a.signal}** (${text})` : text}`)
      }
      if (t.risk) lines.push(`  - risk: ${riskText(t.risk.from)} → **${riskText(t.risk.to)}**`)
    }
    lines.push('')
  }
  return lines.join('\n')
}
