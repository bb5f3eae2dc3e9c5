/**
 * Loading policy files: read YAML, validate the shape strictly, parse and type-check every `when`
 * against the typed environment, and refuse duplicate ids across files. Any problem stops the
 * load with `POLICY_INVALID`, naming the file, the rule id and the CEL error with its position.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import type { Environment, ParseResult } from '@marcbachmann/cel-js'
import { SluiceError } from '../errors.js'
import { nearest } from '../text.js'
import {
  CALL_PHASE_VARIABLES,
  createPolicyEnvironment,
  referencesVariables,
} from './environment.js'
import { labelUse, type LabelUse } from './labels.js'
import {
  CelPolicySet,
  positionOf,
  type CompiledBudget,
  type CompiledRule,
  type PolicySet,
} from './policy-set.js'

/** Rule and budget ids: short, printable, safe in logs and audit records. */
export const POLICY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/

const idSchema = z.string().regex(POLICY_ID_PATTERN, {
  message: `an id must match ${POLICY_ID_PATTERN.source}`,
})
const whenSchema = z.string().trim().min(1, { message: 'expected a CEL expression' })

const ruleSchema = z.strictObject({
  id: idSchema,
  effect: z.enum(['allow', 'deny', 'approve']),
  when: whenSchema,
  description: z.string().optional(),
})

const budgetSchema = z.strictObject({
  id: idSchema,
  when: whenSchema,
  maxCallsPerExecution: z.number().int().min(0),
})

/** The shape of one policy file. */
export const policyFileSchema = z.strictObject({
  rules: z.array(ruleSchema).optional(),
  budgets: z.array(budgetSchema).optional(),
})

/** Top level first, then entry by entry, so one bad entry does not hide the others' problems. */
const fileShape = z.strictObject({
  rules: z.array(z.unknown()).optional(),
  budgets: z.array(z.unknown()).optional(),
})

export type PolicyFile = z.infer<typeof policyFileSchema>

interface Problem {
  readonly file: string
  readonly where: string
  readonly ruleId?: string
  readonly message: string
}

let sharedEnv: Environment | undefined

/** Building the environment is the expensive part of cel-js; one per process is enough. */
function environment(): Environment {
  sharedEnv ??= createPolicyEnvironment()
  return sharedEnv
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)'
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('')
}

function idAt(raw: unknown, path: readonly PropertyKey[]): string | undefined {
  const [list, index] = path
  if ((list !== 'rules' && list !== 'budgets') || typeof index !== 'number') return undefined
  const entries = (raw as Record<string, unknown> | null)?.[list]
  const entry: unknown = Array.isArray(entries) ? entries[index] : undefined
  const id = (entry as { id?: unknown } | undefined)?.id
  return typeof id === 'string' ? id : undefined
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
  }
  return issue.message.replace(/^Invalid input: /, '')
}

/** The cel-js message minus its first line is a source excerpt with a caret; keep it, indented. */
function celExcerpt(message: string): string {
  const lines = message
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
  return lines.length === 0 ? '' : `\n${lines.map((l) => `      ${l}`).join('\n')}`
}

/**
 * Parses and type-checks one `when`. Returns the program or a message with the CEL error and its
 * position inside the expression.
 */
export function compileWhen(
  when: string,
): { ok: true; program: ParseResult } | { ok: false; message: string } {
  let program: ParseResult
  try {
    program = environment().parse(when)
  } catch (err) {
    return { ok: false, message: celProblem('does not parse', err, when) }
  }
  const checked = program.check()
  if (!checked.valid)
    return { ok: false, message: celProblem('does not type-check', checked.error, when) }
  if (checked.type !== 'bool') {
    return {
      ok: false,
      message: `must be a bool expression, but its type is ${checked.type ?? 'unknown'}${
        checked.type === 'dyn' ? ' (compare the value, e.g. `args.flag == true`)' : ''
      }`,
    }
  }
  return { ok: true, program }
}

function celProblem(what: string, err: unknown, when: string): string {
  const e = err as { summary?: unknown; message?: unknown; range?: { start?: unknown } } | undefined
  const summary = typeof e?.summary === 'string' ? e.summary : String(e?.message ?? err)
  const start = typeof e?.range?.start === 'number' ? e.range.start : undefined
  const at =
    start === undefined
      ? ''
      : (({ line, column }) => ` at line ${line}, column ${column}`)(positionOf(when, start))
  const excerpt = typeof e?.message === 'string' ? celExcerpt(e.message) : ''
  return `${what}: ${summary}${at}${excerpt}`
}

interface CheckedFile {
  readonly rules: ReadonlyArray<{ index: number; entry: z.infer<typeof ruleSchema> }>
  readonly budgets: ReadonlyArray<{ index: number; entry: z.infer<typeof budgetSchema> }>
}

function readPolicyFile(file: string, problems: Problem[]): CheckedFile | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    problems.push({
      file,
      where: 'file',
      message: code === 'ENOENT' ? 'file not found' : `cannot read file (${code ?? 'error'})`,
    })
    return undefined
  }
  let raw: unknown
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true })
  } catch (cause) {
    problems.push({ file, where: 'file', message: `not valid YAML: ${(cause as Error).message}` })
    return undefined
  }
  if (raw === null || raw === undefined || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push({
      file,
      where: '(top level)',
      message: 'expected a mapping with `rules:` and/or `budgets:`',
    })
    return undefined
  }
  const top = fileShape.safeParse(raw)
  if (!top.success) {
    for (const issue of top.error.issues)
      problems.push({ file, where: formatPath(issue.path), message: describeIssue(issue) })
    return undefined
  }
  const entries = <T>(
    list: readonly unknown[] | undefined,
    key: 'rules' | 'budgets',
    schema: z.ZodType<T>,
  ): Array<{ index: number; entry: T }> => {
    const valid: Array<{ index: number; entry: T }> = []
    for (const [index, entry] of (list ?? []).entries()) {
      const parsed = schema.safeParse(entry)
      if (parsed.success) {
        valid.push({ index, entry: parsed.data })
        continue
      }
      for (const issue of parsed.error.issues) {
        const path = [key, index, ...issue.path]
        const ruleId = idAt(raw, path)
        problems.push({
          file,
          where: formatPath(path),
          ...(ruleId === undefined ? {} : { ruleId }),
          message: describeIssue(issue),
        })
      }
    }
    return valid
  }
  return {
    rules: entries(top.data.rules, 'rules', ruleSchema),
    budgets: entries(top.data.budgets, 'budgets', budgetSchema),
  }
}

function formatProblems(problems: readonly Problem[]): string {
  const byFile = new Map<string, Problem[]>()
  for (const p of problems) byFile.set(p.file, [...(byFile.get(p.file) ?? []), p])
  return [...byFile]
    .map(([file, list]) => {
      const lines = list.map(
        (p) => `  - ${p.where}${p.ruleId === undefined ? '' : ` (id "${p.ruleId}")`}: ${p.message}`,
      )
      return `invalid policy ${file}:\n${lines.join('\n')}`
    })
    .join('\n')
}

/** What the loader checks policies against besides the CEL environment. */
export interface LoadPolicyOptions {
  /**
   * The data labels the config declares, and the config file that declares them. When given, a
   * label string a rule compares `tool.labels` or `execution.labels` with must be one of them:
   * a misspelt label would make its rule match nothing, silently. Without it (`sluice policy
   * check` and `test`, which have no config) labels are not checked.
   */
  labels?: { declared: readonly string[]; configFile: string }
}

/** One problem per label string that the config does not declare. */
function undeclaredLabels(
  use: LabelUse,
  when: string,
  labels: NonNullable<LoadPolicyOptions['labels']>,
): string[] {
  const declared = new Set(labels.declared)
  const reported = new Set<string>()
  const problems: string[] = []
  for (const literal of use.literals) {
    if (declared.has(literal.label) || reported.has(literal.label)) continue
    reported.add(literal.label)
    const { line, column } = positionOf(when, literal.offset)
    const guess = nearest(literal.label, labels.declared)
    const hint =
      guess !== undefined
        ? ` (did you mean "${guess}"?)`
        : labels.declared.length === 0
          ? '; the config declares no labels (servers.<name>.labels, servers.<name>.tools.<tool>.labels)'
          : `; declared: ${labels.declared.join(', ')}`
    problems.push(
      `label "${literal.label}" (${literal.list}.labels, line ${line}, column ${column}) is not declared in ${labels.configFile}${hint}`,
    )
  }
  return problems
}

/**
 * Loads and checks policy files (synchronously; this runs once at start). Paths are used as
 * given: the config loader has already resolved them against the config file.
 *
 * @throws SluiceError `POLICY_INVALID` naming each file, rule id and problem, with
 *   `details.problems` as `{ file, where, ruleId?, message }[]`.
 */
export function loadPolicies(files: readonly string[], options: LoadPolicyOptions = {}): PolicySet {
  const problems: Problem[] = []
  const rules: CompiledRule[] = []
  const budgets: CompiledBudget[] = []
  const seen = new Map<string, string>()

  const claim = (file: string, where: string, id: string): void => {
    const other = seen.get(id)
    if (other !== undefined) {
      problems.push({
        file,
        where,
        ruleId: id,
        message: `duplicate id "${id}" (also in ${other}); ids are unique across all policy files`,
      })
    } else {
      seen.set(id, `${file} ${where}`)
    }
  }

  const loaded = new Set<string>()
  for (const file of files) {
    if (loaded.has(file)) {
      problems.push({ file, where: 'file', message: 'listed more than once in policies:' })
      continue
    }
    loaded.add(file)
    const data = readPolicyFile(file, problems)
    if (data === undefined) continue
    for (const { index, entry: rule } of data.rules) {
      const where = `rules[${index}]`
      claim(file, where, rule.id)
      const compiled = compileWhen(rule.when)
      if (!compiled.ok) {
        problems.push({ file, where: `${where}.when`, ruleId: rule.id, message: compiled.message })
        continue
      }
      const labels = labelUse(compiled.program.ast)
      if (options.labels !== undefined) {
        for (const message of undeclaredLabels(labels, rule.when, options.labels))
          problems.push({ file, where: `${where}.when`, ruleId: rule.id, message })
      }
      rules.push({
        id: rule.id,
        effect: rule.effect,
        when: rule.when,
        ...(rule.description === undefined ? {} : { description: rule.description }),
        file,
        program: compiled.program,
        callPhase: referencesVariables(compiled.program.ast, CALL_PHASE_VARIABLES),
        labels,
      })
    }
    for (const { index, entry: budget } of data.budgets) {
      const where = `budgets[${index}]`
      claim(file, where, budget.id)
      const compiled = compileWhen(budget.when)
      if (!compiled.ok) {
        problems.push({
          file,
          where: `${where}.when`,
          ruleId: budget.id,
          message: compiled.message,
        })
        continue
      }
      if (options.labels !== undefined) {
        const labels = labelUse(compiled.program.ast)
        for (const message of undeclaredLabels(labels, budget.when, options.labels))
          problems.push({ file, where: `${where}.when`, ruleId: budget.id, message })
      }
      budgets.push({
        id: budget.id,
        when: budget.when,
        maxCallsPerExecution: budget.maxCallsPerExecution,
        file,
        program: compiled.program,
      })
    }
  }

  if (problems.length > 0) {
    const first = problems[0]!
    throw new SluiceError('POLICY_INVALID', formatProblems(problems), {
      details: {
        file: first.file,
        ...(first.ruleId === undefined ? {} : { ruleId: first.ruleId }),
        problems: problems.map((p) => ({ ...p })),
      },
    })
  }
  return new CelPolicySet(files, rules, budgets)
}
