/**
 * Policy case files (`policies/<name>.cases.yaml`): example calls with the decision each must
 * get. `sluice policy test` runs them; so does CI, so a policy change that flips a case fails.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { LABEL_PATTERN } from '../config/index.js'
import { SluiceError } from '../errors.js'
import type { DecisionEffect, Principal } from '../types.js'
import { loadPolicies } from './load.js'
import type { PolicyInput, PolicySet } from './policy-set.js'

const labels = z.array(
  z.string().regex(LABEL_PATTERN, { message: `a label must match ${LABEL_PATTERN.source}` }),
)

const caseSchema = z.strictObject({
  name: z.string().min(1),
  principal: z.strictObject({
    sub: z.string(),
    iss: z.string().optional(),
    tenant: z.string().optional(),
    scopes: z.array(z.string()).optional(),
    claims: z.record(z.string(), z.unknown()).optional(),
  }),
  tool: z.strictObject({
    server: z.string(),
    kind: z.enum(['tool', 'prompt', 'resource']).optional(),
    name: z.string(),
    annotations: z.record(z.string(), z.unknown()).optional(),
    hash: z.string().optional(),
    /** `tool.labels`: the tool's and its server's labels, as the config would give them. */
    labels: labels.optional(),
    /** `tool.risk`, as the lock would pin it (default: unscored, 0 and `low`). */
    risk: z
      .strictObject({
        score: z.number().min(0).max(10),
        level: z.enum(['low', 'medium', 'high']),
        reasons: z.array(z.string()).optional(),
      })
      .optional(),
  }),
  args: z.record(z.string(), z.unknown()).optional(),
  execution: z
    .strictObject({
      id: z.string().optional(),
      /** Calls before this one (default 0). */
      callCount: z.number().int().min(0).optional(),
      /** `execution.labels`: labels of the calls authorised before this one, in call order. */
      labels: labels.optional(),
    })
    .optional(),
  /** ISO 8601 time of the decision; defaults to the time of the run. */
  now: z.iso.datetime({ offset: true }).optional(),
  expect: z.enum(['allow', 'deny', 'approve']),
  /** Expected deciding rule id (`default-deny` when no rule matches). */
  rule: z.string().optional(),
  /** When given, also check whether the tool is listed for the principal. */
  listed: z.boolean().optional(),
})

/** The shape of a case file. */
export const caseFileSchema = z.strictObject({
  /** Policy files, relative to the case file; used when no policy set is passed in. */
  policy: z.array(z.string()).optional(),
  cases: z.array(caseSchema).min(1),
})

export interface CaseResult {
  readonly name: string
  readonly ok: boolean
  readonly expected: DecisionEffect
  readonly actual: DecisionEffect
  /** The rule that decided. */
  readonly ruleId: string
  /** What happened, and on failure what to look at. */
  readonly message: string
}

export interface CaseReport {
  readonly file: string
  readonly passed: number
  readonly failed: number
  readonly results: readonly CaseResult[]
}

function casesError(file: string, problems: string[], cause?: unknown): SluiceError {
  return new SluiceError(
    'POLICY_INVALID',
    `invalid policy cases ${file}:\n  - ${problems.join('\n  - ')}`,
    {
      cause,
      details: { file, problems },
    },
  )
}

function readCaseFile(file: string): z.infer<typeof caseFileSchema> {
  let raw: unknown
  try {
    raw = parseYaml(readFileSync(file, 'utf8'), { prettyErrors: true, uniqueKeys: true })
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    const reason =
      code === 'ENOENT'
        ? 'file not found'
        : code !== undefined
          ? `cannot read file (${code})`
          : `not valid YAML: ${(cause as Error).message}`
    throw casesError(file, [reason], cause)
  }
  const parsed = caseFileSchema.safeParse(raw)
  if (!parsed.success) {
    throw casesError(
      file,
      parsed.error.issues.map((i) => {
        const where =
          i.path
            .map((p, n) =>
              typeof p === 'number' ? `[${p}]` : n === 0 ? String(p) : `.${String(p)}`,
            )
            .join('') || '(top level)'
        const what =
          i.code === 'unrecognized_keys'
            ? `unknown key(s) ${i.keys.map((k) => `"${k}"`).join(', ')}`
            : i.message.replace(/^Invalid input: /, '')
        return `${where}: ${what}`
      }),
      parsed.error,
    )
  }
  return parsed.data
}

/**
 * Runs every case of a case file against a policy set. With `policy` undefined (or only the
 * case file given), loads the files the case file names under `policy:`, relative to it.
 *
 * @example
 * runPolicyCases('policies/demo.cases.yaml')          // the policies the case file names
 * runPolicyCases(loadedSet, 'policies/demo.cases.yaml') // the policies in force
 * @throws SluiceError `POLICY_INVALID` when the case file is malformed or its policies do not load.
 */
export function runPolicyCases(casesFile: string): CaseReport
export function runPolicyCases(policy: PolicySet | undefined, casesFile: string): CaseReport
export function runPolicyCases(first: PolicySet | string | undefined, second?: string): CaseReport {
  const policy = typeof first === 'string' ? undefined : first
  const casesFile = typeof first === 'string' ? first : second
  if (casesFile === undefined) throw new TypeError('runPolicyCases: a case file path is required')
  const file = resolve(casesFile)
  const data = readCaseFile(file)
  let set = policy
  if (set === undefined) {
    if (data.policy === undefined || data.policy.length === 0) {
      throw casesError(file, ['policy: name the policy files to test (relative to this file)'])
    }
    set = loadPolicies(data.policy.map((p) => (isAbsolute(p) ? p : resolve(dirname(file), p))))
  }

  const results: CaseResult[] = data.cases.map((c) => {
    const principal: Principal = {
      sub: c.principal.sub,
      iss: c.principal.iss ?? 'local',
      ...(c.principal.tenant === undefined ? {} : { tenant: c.principal.tenant }),
      scopes: c.principal.scopes ?? [],
      claims: c.principal.claims ?? {},
      authMethod: 'local',
    }
    const input: PolicyInput = {
      principal,
      tool: {
        server: c.tool.server,
        ...(c.tool.kind === undefined ? {} : { kind: c.tool.kind }),
        name: c.tool.name,
        annotations: c.tool.annotations ?? {},
        hash: c.tool.hash ?? '',
        ...(c.tool.labels === undefined ? {} : { labels: c.tool.labels }),
        ...(c.tool.risk === undefined
          ? {}
          : { risk: { ...c.tool.risk, reasons: c.tool.risk.reasons ?? [] } }),
      },
      args: c.args ?? {},
      ...(c.execution === undefined
        ? {}
        : {
            execution: {
              id: c.execution.id ?? `case:${c.name}`,
              callCount: c.execution.callCount ?? 0,
              ...(c.execution.labels === undefined ? {} : { labels: c.execution.labels }),
            },
          }),
      ...(c.now === undefined ? {} : { now: new Date(c.now) }),
    }
    const decision = set.decide(input)
    const problems: string[] = []
    if (decision.effect !== c.expect) {
      problems.push(`expected ${c.expect}, got ${decision.effect} (${decision.reason})`)
    } else if (c.rule !== undefined && decision.ruleId !== c.rule) {
      problems.push(
        `expected rule "${c.rule}" to decide, but "${decision.ruleId}" did (${decision.reason})`,
      )
    }
    if (c.listed !== undefined) {
      const { args: _args, ...listing } = input
      const listed = set.canList(listing)
      if (listed !== c.listed) {
        problems.push(
          c.listed
            ? `expected ${c.tool.server}.${c.tool.name} to be listed for ${c.principal.sub}, but it is hidden`
            : `expected ${c.tool.server}.${c.tool.name} to be hidden from ${c.principal.sub}, but it is listed`,
        )
      }
    }
    const ok = problems.length === 0
    return {
      name: c.name,
      ok,
      expected: c.expect,
      actual: decision.effect,
      ruleId: decision.ruleId,
      message: ok ? `${decision.effect} by "${decision.ruleId}"` : problems.join('; '),
    }
  })

  const passed = results.filter((r) => r.ok).length
  return { file, passed, failed: results.length - passed, results }
}

/** A report as lines a human reads: one per case, failures first with what to fix. */
export function formatCaseReport(report: CaseReport): string {
  const lines = [...report.results]
    .sort((a, b) => Number(a.ok) - Number(b.ok))
    .map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.name}: ${r.message}`)
  lines.push(`${report.file}: ${report.passed} passed, ${report.failed} failed`)
  return lines.join('\n')
}
