/**
 * `${...}` expansion in server entries, in the syntaxes of the clients whose files sluice reads
 * unchanged: `${VAR}` and `${VAR:-default}` (Claude Code), `${env:VAR}` (Cursor, VS Code),
 * `${input:ID}` (VS Code; sluice never prompts, so the value comes from `SLUICE_INPUT_<ID>`),
 * and the predefined `${userHome}`, `${workspaceFolder}`, `${workspaceFolderBasename}`,
 * `${pathSeparator}` / `${/}`, plus sluice's own `${SLUICE_CONFIG_DIR}`.
 *
 * @module
 */
import { homedir } from 'node:os'
import { basename, dirname, sep } from 'node:path'

/** What a reference can resolve against besides the environment. */
export interface ExpandOptions {
  /** VS Code `inputs`: id → description, used to name the value in errors. */
  inputs?: ReadonlyMap<string, string | undefined>
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*/
/** VS Code input ids are free text in practice (`perplexity-key`, `github.token`). */
const INPUT_ID = /^[A-Za-z0-9_.-]+/
/** Any other `${namespace:...}` (VS Code's `config:`, `command:`) cannot be resolved here. */
const OTHER_NAMESPACE = /^([A-Za-z]+):/

/** The environment variable that stands in for a VS Code `${input:ID}` prompt. */
export function inputEnvName(id: string): string {
  return `SLUICE_INPUT_${id.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`
}

/**
 * The folder VS Code and Cursor call `${workspaceFolder}`: the project that holds `.vscode/` or
 * `.cursor/`, else the config file's own folder.
 */
export function workspaceFolderOf(baseDir: string): string {
  const name = basename(baseDir)
  return name === '.vscode' || name === '.cursor' ? dirname(baseDir) : baseDir
}

/**
 * Expands every reference in `text`. An unset variable without a default is an error, never an
 * empty string: a server started with a blank token fails later and further from the cause.
 * Values taken from the environment are never expanded again.
 */
export function expandVars(text: string, baseDir: string, options: ExpandOptions = {}): string {
  return scan(text, 0, { baseDir, options, mask: false }, false, true).value
}

/**
 * The text with every reference replaced by U+0000, and whether a `:-default` appears. Used to
 * tell `Bearer ${TOKEN}` (the secret comes from the environment) from a literal in the file.
 */
export function maskReferences(text: string): { masked: string; hasDefault: boolean } {
  const state = { baseDir: '', options: {}, mask: true, hasDefault: false }
  const masked = scan(text, 0, state, false, true).value
  return { masked, hasDefault: state.hasDefault }
}

interface ScanState {
  baseDir: string
  options: ExpandOptions
  /** Replace references by U+0000 instead of resolving them (nothing is read). */
  mask: boolean
  hasDefault?: boolean
}

interface Reference {
  kind: 'var' | 'input' | 'builtin'
  name: string
  /** Length of the reference's name part, after `${`. */
  length: number
}

const BUILTINS = new Set([
  'userHome',
  'workspaceFolder',
  'workspaceFolderBasename',
  'pathSeparator',
  '/',
  'SLUICE_CONFIG_DIR',
])

function referenceAt(text: string, at: number): Reference | undefined {
  const rest = text.slice(at)
  if (rest.startsWith('/}')) return { kind: 'builtin', name: '/', length: 1 }
  if (rest.startsWith('env:')) {
    const name = VAR_NAME.exec(rest.slice(4))?.[0]
    return name === undefined ? undefined : { kind: 'var', name, length: 4 + name.length }
  }
  if (rest.startsWith('input:')) {
    const id = INPUT_ID.exec(rest.slice(6))?.[0]
    return id === undefined ? undefined : { kind: 'input', name: id, length: 6 + id.length }
  }
  const other = OTHER_NAMESPACE.exec(rest)?.[1]
  if (other !== undefined && rest[other.length + 1] !== '-') {
    throw new Error(
      `\${${other}:...} is not supported (sluice expands \${VAR}, \${VAR:-default}, \${env:VAR}, \${input:ID}, \${userHome} and \${workspaceFolder})`,
    )
  }
  const name = VAR_NAME.exec(rest)?.[0]
  if (name === undefined) return undefined
  return { kind: BUILTINS.has(name) ? 'builtin' : 'var', name, length: name.length }
}

/**
 * Expands from `start`; inside a default (`nested`) it stops at the `}` that closes it. A default
 * is only scanned, not evaluated, when its variable is set (`evaluate` false).
 */
function scan(
  text: string,
  start: number,
  state: ScanState,
  nested: boolean,
  evaluate: boolean,
): { value: string; end: number } {
  let out = ''
  let i = start
  while (i < text.length) {
    if (nested && text[i] === '}') return { value: out, end: i }
    const ref = text.startsWith('${', i) ? referenceAt(text, i + 2) : undefined
    if (ref === undefined) {
      out += text[i]
      i += 1
      continue
    }
    let j = i + 2 + ref.length
    let fallback: string | undefined
    if (ref.kind !== 'input' && text.startsWith(':-', j)) {
      if (state.mask) state.hasDefault = true
      const set = ref.kind === 'builtin' || isSet(ref.name)
      const inner = scan(text, j + 2, state, true, evaluate && !state.mask && !set)
      fallback = inner.value
      j = inner.end
    }
    if (text[j] !== '}') {
      // Not a complete reference: keep the text as it is.
      out += text[i]
      i += 1
      continue
    }
    if (state.mask) out += '\u0000'
    else if (evaluate) out += resolve(ref, fallback, state)
    i = j + 1
  }
  if (nested) throw new Error(`unterminated \${...} in ${JSON.stringify(text)}`)
  return { value: out, end: i }
}

function isSet(name: string): boolean {
  const value = process.env[name]
  return value !== undefined && value !== ''
}

function resolve(ref: Reference, fallback: string | undefined, state: ScanState): string {
  if (ref.kind === 'builtin') {
    const workspace = workspaceFolderOf(state.baseDir)
    switch (ref.name) {
      case 'SLUICE_CONFIG_DIR':
        return state.baseDir
      case 'userHome':
        return homedir()
      case 'workspaceFolder':
        return workspace
      case 'workspaceFolderBasename':
        return basename(workspace)
      default:
        return sep
    }
  }
  if (ref.kind === 'input') {
    const envName = inputEnvName(ref.name)
    const value = process.env[envName]
    if (value !== undefined && value !== '') return value
    const description = state.options.inputs?.get(ref.name)
    const what = description === undefined ? '' : ` (${JSON.stringify(description)})`
    throw new Error(
      `\${input:${ref.name}}${what} has no value: sluice does not prompt; set ${envName} in the environment`,
    )
  }
  const value = process.env[ref.name]
  if (value !== undefined && value !== '') return value
  if (fallback !== undefined) return fallback
  throw new Error(`\${${ref.name}} is not set (use \${${ref.name}:-default} for a default)`)
}
