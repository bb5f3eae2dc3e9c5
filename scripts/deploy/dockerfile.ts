/**
 * The Dockerfile's hardening rules, checked on its parsed form (dockerfile-ast), and the facts
 * about the image that the Kubernetes check and the entrypoint test need (ENTRYPOINT, CMD, what
 * the runtime stage copies).
 *
 * @module
 */
import { DockerfileParser, type Copy, type Env, type From, type Instruction } from 'dockerfile-ast'

export interface Stage {
  /** The `AS` name, if any. */
  name: string | undefined
  from: From
  instructions: Instruction[]
}

/** One COPY of the runtime stage: `from` is a stage name, or undefined for the build context. */
export interface ImageCopy {
  from: string | undefined
  sources: string[]
  dest: string
}

/** What the final stage says about the running container. */
export interface ImageSpec {
  entrypoint: string[] | undefined
  cmd: string[] | undefined
  workdir: string
  user: string | undefined
  env: Record<string, string>
  copies: ImageCopy[]
  /** The WORKDIR of each named stage, to map its paths back to the repository. */
  stageWorkdirs: Record<string, string>
}

const EXACT_TAG = /^\d+\.\d+\.\d+(-[A-Za-z0-9.-]+)?$/
const DIGEST = /^sha256:[0-9a-f]{64}$/
/** Node 22 LTS, as the slim Debian image or distroless. */
const NODE_22_RUNTIME = [/^node:22\.[^@]*slim/, /^gcr\.io\/distroless\/nodejs22-/]
/** Paths that must never reach the build context. */
const NEVER_IN_CONTEXT = ['.git', '.sluice', 'node_modules']

/** `Dockerfile:N`, where a message about instruction `i` points. */
const line = (i: Instruction): string => `Dockerfile:${i.getRange().start.line + 1}`

function splitStages(text: string): Stage[] {
  const stages: Stage[] = []
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = instruction as From
      stages.push({ name: from.getBuildStage() ?? undefined, from, instructions: [] })
    } else stages.at(-1)?.instructions.push(instruction)
  }
  return stages
}

/** The exec form's strings, or undefined for the shell form. */
function execForm(instruction: Instruction): string[] | undefined {
  const content = instruction.getArgumentsContent()?.trim() ?? ''
  if (!content.startsWith('[')) return undefined
  try {
    const parsed: unknown = JSON.parse(content)
    return Array.isArray(parsed) && parsed.every((s) => typeof s === 'string') ? parsed : undefined
  } catch {
    return undefined
  }
}

function last(stage: Stage, keyword: string): Instruction | undefined {
  return stage.instructions.filter((i) => i.getKeyword() === keyword).at(-1)
}

function words(i: Instruction): string[] {
  return i.getArguments().map((a) => a.getValue())
}

function workdirOf(stage: Stage): string {
  const w = last(stage, 'WORKDIR')
  return w === undefined ? '/' : (words(w)[0] ?? '/')
}

function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const i of stage.instructions.filter((i) => i.getKeyword() === 'ENV')) {
    for (const p of (i as Env).getProperties()) env[p.getName()] = p.getValue() ?? ''
  }
  return env
}

function copiesOf(stage: Stage): ImageCopy[] {
  return stage.instructions
    .filter((i) => i.getKeyword() === 'COPY')
    .map((i) => {
      const args = words(i)
      return {
        from: (i as Copy).getFromFlag()?.getValue() ?? undefined,
        sources: args.slice(0, -1),
        dest: args.at(-1) ?? '',
      }
    })
}

/** The final stage's view of the image. */
export function imageOf(text: string): ImageSpec {
  const stages = splitStages(text)
  const final = stages.at(-1)
  if (final === undefined) throw new Error('Dockerfile: no FROM')
  const entrypoint = last(final, 'ENTRYPOINT')
  const cmd = last(final, 'CMD')
  const user = last(final, 'USER')
  return {
    entrypoint: entrypoint && execForm(entrypoint),
    cmd: cmd && execForm(cmd),
    workdir: workdirOf(final),
    user: user && words(user)[0],
    env: envOf(final),
    copies: copiesOf(final),
    stageWorkdirs: Object.fromEntries(
      stages.flatMap((s) => (s.name === undefined ? [] : [[s.name, workdirOf(s)]])),
    ),
  }
}

/** The value of `--name VALUE` or `--name=VALUE` in an argument list. */
export function flagValue(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1]
    if (args[i]?.startsWith(`--${name}=`)) return args[i]!.slice(name.length + 3)
  }
  return undefined
}

function isNpmInstall(cmd: string): boolean {
  return /\bnpm\s+(ci|install|i)\b/.test(cmd)
}

/** True when the stage's last npm install leaves only production dependencies. */
function installsProductionOnly(stage: Stage): boolean {
  let prod = false
  for (const i of stage.instructions.filter((i) => i.getKeyword() === 'RUN')) {
    const cmd = i.getArgumentsContent() ?? ''
    if (isNpmInstall(cmd)) prod = cmd.includes('--omit=dev')
    if (/\bnpm\s+prune\b/.test(cmd) && cmd.includes('--omit=dev')) prod = true
  }
  return prod
}

function pinProblems(stages: Stage[]): string[] {
  const problems: string[] = []
  const names = new Set<string>()
  for (const [index, stage] of stages.entries()) {
    const image = stage.from.getImage() ?? ''
    if (!names.has(image)) {
      const tag = stage.from.getImageTag()
      const digest = stage.from.getImageDigest()
      if (tag === null || !EXACT_TAG.test(tag) || digest === null || !DIGEST.test(digest)) {
        problems.push(
          `${line(stage.from)}: FROM ${image}: pin the base image to an exact version tag and a digest (name:1.2.3-variant@sha256:<64 hex>)`,
        )
      }
      if (index === stages.length - 1 && !NODE_22_RUNTIME.some((r) => r.test(image))) {
        problems.push(
          `${line(stage.from)}: FROM ${image}: the runtime stage must be Node 22 LTS, slim or distroless`,
        )
      }
    }
    if (stage.name !== undefined) names.add(stage.name)
  }
  return problems
}

function userProblems(final: Stage): string[] {
  const user = last(final, 'USER')
  if (user === undefined)
    return ['Dockerfile: runtime stage: no USER: the container would run as root']
  const value = words(user)[0] ?? ''
  const uid = value.split(':')[0] ?? ''
  if (!/^\d+$/.test(uid)) {
    return [
      `${line(user)}: USER ${value}: use a numeric UID (e.g. 1000:1000) so that Kubernetes' runAsNonRoot can verify it`,
    ]
  }
  return Number(uid) === 0 ? [`${line(user)}: USER ${value}: runs as root`] : []
}

function commandProblems(final: Stage): string[] {
  const problems: string[] = []
  for (const keyword of ['ENTRYPOINT', 'CMD']) {
    const i = last(final, keyword)
    if (i === undefined) problems.push(`Dockerfile: runtime stage: no ${keyword}`)
    else if (execForm(i) === undefined) {
      problems.push(
        `${line(i)}: ${keyword} in shell form: use the exec form (a JSON array) so the gateway is PID 1 and receives SIGTERM`,
      )
    }
  }
  return problems
}

function healthcheckProblems(final: Stage): string[] {
  const check = last(final, 'HEALTHCHECK')
  if (check === undefined) return ['Dockerfile: runtime stage: no HEALTHCHECK']
  const content = check.getArgumentsContent() ?? ''
  if (/^\s*NONE\b/i.test(content)) {
    return [`${line(check)}: HEALTHCHECK NONE disables the health check`]
  }
  const cmd = last(final, 'CMD')
  const port = (cmd && flagValue(execForm(cmd) ?? [], 'port')) ?? '8787'
  const url = `http://127.0.0.1:${port}/healthz`
  return content.includes(url)
    ? []
    : [`${line(check)}: HEALTHCHECK does not probe ${url} (the port CMD serves on)`]
}

function devDependencyProblems(stages: Stage[], final: Stage): string[] {
  const problems: string[] = []
  for (const i of final.instructions.filter((i) => i.getKeyword() === 'RUN')) {
    const cmd = i.getArgumentsContent() ?? ''
    if (isNpmInstall(cmd) && !cmd.includes('--omit=dev'))
      problems.push(`${line(i)}: the runtime stage installs dev dependencies: add --omit=dev`)
  }
  for (const i of final.instructions.filter((i) => i.getKeyword() === 'COPY')) {
    const sources = words(i).slice(0, -1)
    if (!sources.some((s) => /(^|\/)node_modules\/?$/.test(s))) continue
    const from = (i as Copy).getFromFlag()?.getValue()
    const stage = stages.find((s) => s.name === from)
    if (from === undefined) {
      problems.push(
        `${line(i)}: node_modules copied from the build context: install production dependencies in a stage instead`,
      )
    } else if (stage !== undefined && !installsProductionOnly(stage)) {
      problems.push(
        `${line(i)}: node_modules comes from stage ${from}, which keeps dev dependencies (no npm ci --omit=dev or npm prune --omit=dev)`,
      )
    }
  }
  if (envOf(final)['NODE_ENV'] !== 'production')
    problems.push('Dockerfile: runtime stage: ENV NODE_ENV=production is missing')
  return problems
}

/** Compiles one .dockerignore pattern (Go filepath.Match syntax plus `**`). */
function ignoreRegex(pattern: string): RegExp {
  const body = pattern
    .replace(/^\/+|\/+$/g, '')
    .split(/(\*\*|\*|\?)/)
    .map((part) =>
      part === '**'
        ? '.*'
        : part === '*'
          ? '[^/]*'
          : part === '?'
            ? '[^/]'
            : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
    )
    .join('')
  return new RegExp(`^${body}$`)
}

/** Whether `.dockerignore` keeps `path` out of the build context (the last matching line wins). */
export function ignored(dockerignore: string, path: string): boolean {
  const clean = path.replace(/^\.\/|\/+$/g, '')
  const prefixes = clean.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'))
  let out = false
  for (const raw of dockerignore.split('\n')) {
    const text = raw.trim()
    if (text === '' || text.startsWith('#')) continue
    const negated = text.startsWith('!')
    const re = ignoreRegex(negated ? text.slice(1) : text)
    if (prefixes.some((p) => re.test(p))) out = !negated
  }
  return out
}

function contextProblems(stages: Stage[], dockerignore: string): string[] {
  const problems: string[] = []
  for (const stage of stages) {
    for (const i of stage.instructions.filter((i) => i.getKeyword() === 'COPY')) {
      if ((i as Copy).getFromFlag() !== null) continue
      for (const source of words(i).slice(0, -1)) {
        if (ignored(dockerignore, source))
          problems.push(
            `${line(i)}: COPY ${source}: .dockerignore keeps it out of the build context`,
          )
      }
    }
  }
  for (const path of NEVER_IN_CONTEXT) {
    if (!ignored(dockerignore, path))
      problems.push(`.dockerignore: ${path} must be kept out of the build context`)
  }
  return problems
}

/**
 * Every broken hardening rule of `text` (a Dockerfile), one message each; empty when all hold.
 * With `dockerignore`, its text is checked against what the Dockerfile copies too.
 */
export function checkDockerfile(text: string, dockerignore?: string): string[] {
  const stages = splitStages(text)
  const final = stages.at(-1)
  if (final === undefined) return ['Dockerfile: no FROM']
  const problems: string[] = []
  if (stages.length < 2) {
    problems.push(
      `Dockerfile: multi-stage build expected: ${stages.length} FROM found (build in one stage, run from another)`,
    )
  }
  problems.push(
    ...pinProblems(stages),
    ...userProblems(final),
    ...commandProblems(final),
    ...healthcheckProblems(final),
    ...devDependencyProblems(stages, final),
  )
  if (dockerignore !== undefined) problems.push(...contextProblems(stages, dockerignore))
  return problems
}
