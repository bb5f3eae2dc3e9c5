/**
 * A risk score per tool and per server, explained field by field: what a reviewer weighs before
 * a tool reaches an agent, and what a policy can act on (`tool.risk.score >= 7.0`). Every reason
 * names the field it comes from and the points it adds, so a score can be checked by hand.
 *
 * Annotations follow the MCP defaults: a tool that does not say `readOnlyHint: true` may write;
 * `destructiveHint` and `openWorldHint` default to true, so leaving them out costs less than
 * setting them, but not nothing.
 *
 * @module
 */
import type { ServerConfig } from '../config/index.js'
import type { Risk, ToolDefinition } from '../types.js'
import type { LockSource } from './lock.js'

export type { Risk }

/** Highest score; sums are capped here. */
export const MAX_RISK_SCORE = 10
/** At or above: `high`. */
export const HIGH_RISK = 7
/** At or above: `medium`. */
export const MEDIUM_RISK = 4

/** The points of each factor, so docs and tests read the same numbers. */
export const RISK_WEIGHTS = Object.freeze({
  write: 2,
  destructive: 2,
  destructiveUnset: 1,
  openWorld: 1.5,
  openWorldUnset: 0.5,
  freeString: 0.5,
  freeStringMax: 1.5,
  openObject: 1,
  remote: 1,
  unpinned: 1.5,
  secrets: 1,
  unsigned: 1,
})

/** What the score of a server's tools depends on besides their definitions. */
export interface ServerFacts {
  source: LockSource
  /** What the server needs to run, as `env NAME` / `header NAME` / `<grant> AUDIENCE`. */
  secrets: readonly string[]
  /** Whether the lock that pins these tools is signed. */
  signed: boolean
}

interface Factor {
  points: number
  reason: string
}

export function riskLevel(score: number): Risk['level'] {
  return score >= HIGH_RISK ? 'high' : score >= MEDIUM_RISK ? 'medium' : 'low'
}

function total(factors: readonly Factor[]): Risk {
  const sum = factors.reduce((n, f) => n + f.points, 0)
  const score = Math.round(Math.min(MAX_RISK_SCORE, sum) * 10) / 10
  return {
    score,
    level: riskLevel(score),
    reasons: factors.map((f) => `+${f.points} ${f.reason}`),
  }
}

/** What a tool's own definition adds: annotations and how loose its input schema is. */
function toolFactors(definition: ToolDefinition): Factor[] {
  const factors: Factor[] = []
  const a = (definition.annotations ?? {}) as Record<string, unknown>
  if (a.readOnlyHint !== true) {
    factors.push({
      points: RISK_WEIGHTS.write,
      reason: 'annotations.readOnlyHint is not true: may change state',
    })
    if (a.destructiveHint === true)
      factors.push({
        points: RISK_WEIGHTS.destructive,
        reason: 'annotations.destructiveHint: true',
      })
    else if (a.destructiveHint === undefined)
      factors.push({
        points: RISK_WEIGHTS.destructiveUnset,
        reason: 'annotations.destructiveHint not set: MCP assumes destructive',
      })
  }
  if (a.openWorldHint === true)
    factors.push({
      points: RISK_WEIGHTS.openWorld,
      reason: 'annotations.openWorldHint: true: reaches systems outside',
    })
  else if (a.openWorldHint === undefined)
    factors.push({
      points: RISK_WEIGHTS.openWorldUnset,
      reason: 'annotations.openWorldHint not set: MCP assumes open world',
    })
  const schema = (definition.inputSchema ?? {}) as Record<string, unknown>
  const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>
  const free = Object.entries(properties)
    .filter(([, p]) => isFreeString(p))
    .map(([name]) => name)
    .sort()
  if (free.length > 0) {
    factors.push({
      points: Math.min(RISK_WEIGHTS.freeStringMax, free.length * RISK_WEIGHTS.freeString),
      reason: `inputSchema: free-form strings (no enum, pattern, format or maxLength): ${free.join(', ')}`,
    })
  }
  if (schema.additionalProperties !== false) {
    factors.push({
      points: RISK_WEIGHTS.openObject,
      reason: 'inputSchema.additionalProperties is not false: accepts fields it does not name',
    })
  }
  return factors
}

function isFreeString(p: Record<string, unknown> | undefined): boolean {
  if (p === null || typeof p !== 'object') return false
  const types = Array.isArray(p.type) ? p.type : [p.type]
  if (!types.includes('string')) return false
  return (
    p.enum === undefined &&
    p.const === undefined &&
    p.pattern === undefined &&
    p.format === undefined &&
    p.maxLength === undefined
  )
}

/** What the server adds to each of its tools: where it runs, how it is pinned, what it needs. */
function serverFactors(facts: ServerFacts): Factor[] {
  const factors: Factor[] = []
  if (facts.source.type === 'http') {
    factors.push({
      points: RISK_WEIGHTS.remote,
      reason: 'source: remote server: runs outside this host, at whatever version it serves',
    })
  } else {
    const unpinned = unpinnedPackage(facts.source)
    if (unpinned !== undefined)
      factors.push({
        points: RISK_WEIGHTS.unpinned,
        reason: `source: ${unpinned} is not pinned to an exact version`,
      })
  }
  if (facts.secrets.length > 0)
    factors.push({
      points: RISK_WEIGHTS.secrets,
      reason: `credentials: needs ${facts.secrets.join(', ')}`,
    })
  if (!facts.signed) factors.push({ points: RISK_WEIGHTS.unsigned, reason: 'lock: not signed' })
  return factors
}

const EXACT_VERSION = /^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$/

/**
 * The package a package runner (npx, uvx, docker) starts without an exact version, if any.
 * Any other command runs what is on disk, and is not judged here.
 */
export function unpinnedPackage(
  source: Extract<LockSource, { type: 'stdio' }>,
): string | undefined {
  const command = source.command.split('/').pop() ?? source.command
  const operands = source.args.filter((a) => !a.startsWith('-'))
  if (command === 'npx') {
    const spec = operands[0]
    if (spec === undefined) return undefined
    const at = spec.lastIndexOf('@')
    const version = at > 0 ? spec.slice(at + 1) : ''
    return EXACT_VERSION.test(version) ? undefined : `npx ${spec}`
  }
  if (command === 'uvx' || command === 'uv') {
    const spec = operands.find((a) => a !== 'tool' && a !== 'run')
    if (spec === undefined) return undefined
    return /==\d/.test(spec) ? undefined : `uvx ${spec}`
  }
  if (command === 'docker' || command === 'podman') {
    // `docker run [options] IMAGE`: the first operand after `run` that is not an option value.
    const run = source.args.indexOf('run')
    const rest = source.args.slice(run + 1)
    const image = rest.find(
      (a, i) =>
        !a.startsWith('-') && !/^-(e|v|p|w|u|-env|-volume|-name|-network)$/.test(rest[i - 1] ?? ''),
    )
    if (image === undefined) return undefined
    const tag = /@sha256:[a-f0-9]{64}$/.test(image) ? 'digest' : /:([^/:]+)$/.exec(image)?.[1]
    return tag !== undefined && tag !== 'latest' ? undefined : `${command} image ${image}`
  }
  return undefined
}

/** The risk of one tool: its own factors plus its server's. */
export function toolRisk(definition: ToolDefinition, server: ServerFacts): Risk {
  return total([...toolFactors(definition), ...serverFactors(server)])
}

/** The risk of a server: its own factors plus those of its riskiest tool. */
export function serverRisk(tools: readonly ToolDefinition[], server: ServerFacts): Risk {
  let worst: { name: string; factors: Factor[]; points: number } | undefined
  for (const definition of tools) {
    const factors = toolFactors(definition)
    const points = factors.reduce((n, f) => n + f.points, 0)
    if (worst === undefined || points > worst.points)
      worst = { name: definition.name, factors, points }
  }
  const own = serverFactors(server)
  if (worst === undefined || worst.points === 0) return total(own)
  return total([...own, { points: worst.points, reason: `tools: riskiest is ${worst.name}` }])
}

/**
 * What a server needs in secrets, by name, never value: an `env` grant's variables, a static
 * grant's header, the audience of a token grant, and headers whose names say they hold one.
 */
export function secretsOf(
  config: ServerConfig,
  isSecretHeader: (name: string) => boolean,
): string[] {
  const out: string[] = []
  const grant = config.credentials
  if (grant?.grant === 'env') out.push(...Object.keys(grant.env).map((k) => `env ${k}`))
  else if (grant?.grant === 'static') out.push(`header ${grant.header}`)
  else if (grant?.grant === 'token-exchange') out.push(`token-exchange ${grant.audience}`)
  else if (grant?.grant === 'jwt') out.push(`jwt ${grant.audience}`)
  if ('headers' in config) {
    for (const header of Object.keys(config.headers))
      if (isSecretHeader(header)) out.push(`header ${header}`)
  }
  return [...new Set(out)].sort()
}
