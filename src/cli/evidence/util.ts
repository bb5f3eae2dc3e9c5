/**
 * Small helpers the domain modules share: how paths, CEL, URLs and errors appear in a report.
 *
 * @module
 */
import { isAbsolute, relative } from 'node:path'
import type { Config } from '../../config/index.js'
import { isSluiceError } from '../../errors.js'

/** A path as the operator wrote it relative to the working directory, when it is below it. */
export function shown(path: string): string {
  const rel = relative(process.cwd(), path)
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path
}

/** The config file as a report names it. */
export function configName(config: Config): string {
  return config.file ? shown(config.file) : '(default config)'
}

/** CEL spread over lines in YAML reads as one line in a report. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim()
}

/** An endpoint without user-info or query (either may hold a credential). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url)
    u.username = ''
    u.password = ''
    u.search = ''
    u.hash = ''
    return u.toString()
  } catch {
    return '(unparseable URL)'
  }
}

export function message(cause: unknown): string {
  return isSluiceError(cause) || cause instanceof Error ? cause.message : String(cause)
}

/** `1,234`: counts an auditor reads at a glance. */
export function count(n: number): string {
  return n.toLocaleString('en-US')
}
