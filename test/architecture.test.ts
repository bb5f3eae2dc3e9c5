/**
 * Keeps the dependency direction of DESIGN.md section 2 true:
 * cli/main → gateway → engine → leaves → kernel; runtime/ stands apart.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, dirname, resolve, sep } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '..')
const KERNEL = ['types', 'errors', 'canonical-json', 'text', 'config', 'telemetry']
const LEAVES = [
  'sandbox',
  'bindings',
  'policy',
  'auth',
  'upstream',
  'registry',
  'guard',
  'audit',
  'store',
]
const ALLOWED: Record<string, readonly string[]> = {
  types: [],
  errors: ['types'],
  'canonical-json': [],
  text: [],
  config: ['types', 'errors', 'text'],
  telemetry: ['types', 'errors', 'config'],
  ...Object.fromEntries(LEAVES.map((l) => [l, KERNEL])),
  engine: [...KERNEL, ...LEAVES],
  gateway: [...KERNEL, 'engine', 'auth'],
  cli: ['*'],
  main: ['*'],
  index: ['*'],
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

function moduleOf(file: string): string {
  const rel = relative(join(root, 'src'), file).split(sep)
  return (rel.length === 1 ? rel[0]! : rel[0]!).replace(/\.ts$/, '')
}

function imports(file: string): string[] {
  return importStatements(file).map((s) => s.spec)
}

function importStatements(file: string): Array<{ spec: string; typeOnly: boolean }> {
  const text = readFileSync(file, 'utf8')
  return [
    ...text.matchAll(/(?:^|\n)\s*(import|export)(\s+type)?[^'"]*?from\s+['"]([^'"]+)['"]/g),
  ].map((m) => ({
    spec: m[3]!,
    typeOnly: m[2] !== undefined,
  }))
}

describe('architecture', () => {
  it('src modules import only along the allowed direction, and only through index.ts', () => {
    const problems: string[] = []
    for (const file of files(join(root, 'src'))) {
      const from = moduleOf(file)
      for (const { spec, typeOnly } of importStatements(file)) {
        if (!spec.startsWith('.')) continue
        const target = resolve(dirname(file), spec)
        if (relative(root, target).startsWith(`runtime${sep}`)) {
          // Only the sandbox may know the guest's wire shapes, and only as types.
          if (from !== 'sandbox' || !typeOnly)
            problems.push(
              `${relative(root, file)} → runtime (type-only imports from src/sandbox alone)`,
            )
          continue
        }
        const to = moduleOf(target.replace(/\.js$/, '.ts'))
        if (to === from) continue
        const allowed = ALLOWED[from] ?? []
        if (!allowed.includes('*') && !allowed.includes(to))
          problems.push(`${relative(root, file)} → ${to}`)
        const rel = relative(join(root, 'src'), target).split(sep)
        if (
          rel.length > 1 &&
          !['index.js', 'index.ts'].includes(rel[rel.length - 1]!) &&
          !['cli', 'main'].includes(from)
        ) {
          problems.push(
            `${relative(root, file)} reaches into ${rel.join('/')} (import ${to}/index.js)`,
          )
        }
      }
    }
    expect(problems).toEqual([])
  })

  it('only src/telemetry/sdk.ts imports the OpenTelemetry SDK', () => {
    const offenders = files(join(root, 'src'))
      .filter((f) =>
        imports(f).some((s) => s.startsWith('@opentelemetry/') && s !== '@opentelemetry/api'),
      )
      .map((f) => relative(root, f))
    expect(offenders.filter((f) => f !== join('src', 'telemetry', 'sdk.ts'))).toEqual([])
  })

  it('runtime/ imports nothing from Node or src/', () => {
    const offenders = files(join(root, 'runtime')).flatMap((f) =>
      imports(f)
        .filter((s) => !s.startsWith('./'))
        .map((s) => `${relative(root, f)} → ${s}`),
    )
    expect(offenders).toEqual([])
  })
})
