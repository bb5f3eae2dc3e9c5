/**
 * Reading a kustomize folder the way `kubectl apply -k` would, without kustomize: the
 * kustomization, every resource file it lists, and the ConfigMaps its configMapGenerator makes.
 * Only plain resource files are followed (no bases, components or patches).
 *
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import { parseAllDocuments } from 'yaml'

/** One Kubernetes object and where it came from (a file, or the generator that makes it). */
export interface Manifest {
  file: string
  doc: Record<string, unknown>
}

export interface Bundle {
  dir: string
  kustomization: Record<string, unknown>
  manifests: Manifest[]
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []

function readYaml(path: string, file: string, problems: string[]): unknown[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'))
  const out: unknown[] = []
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      problems.push(`${file}: not valid YAML: ${doc.errors[0]!.message}`)
      continue
    }
    const value: unknown = doc.toJS()
    if (value !== null && value !== undefined) out.push(value)
  }
  return out
}

const isFile = (path: string): boolean => existsSync(path) && statSync(path).isFile()

/** A generator's `files` entry: `path` (key = its basename) or `key=path`. */
function generatorFile(entry: string): { key: string; path: string } {
  const eq = entry.indexOf('=')
  return eq === -1
    ? { key: basename(entry), path: entry }
    : { key: entry.slice(0, eq), path: entry.slice(eq + 1) }
}

function generated(
  dir: string,
  kustomization: Record<string, unknown>,
  problems: string[],
): Manifest[] {
  const generators = Array.isArray(kustomization['configMapGenerator'])
    ? kustomization['configMapGenerator']
    : []
  return generators.flatMap((g: unknown, index) => {
    if (!isObject(g) || typeof g['name'] !== 'string') {
      problems.push(`kustomization.yaml: configMapGenerator[${index}] has no name`)
      return []
    }
    const data: Record<string, string> = {}
    for (const entry of strings(g['files'])) {
      const { key, path } = generatorFile(entry)
      if (!isFile(join(dir, path))) {
        problems.push(
          `kustomization.yaml: configMapGenerator ${g['name']}: file ${path} does not exist`,
        )
      } else data[key] = readFileSync(join(dir, path), 'utf8')
    }
    for (const literal of strings(g['literals'])) {
      const eq = literal.indexOf('=')
      if (eq > 0) data[literal.slice(0, eq)] = literal.slice(eq + 1)
    }
    return [
      {
        file: `kustomization.yaml configMapGenerator ${g['name']}`,
        doc: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g['name'] }, data },
      },
    ]
  })
}

/** The folder's objects, and what kept any of them from loading. */
export function loadBundle(dir: string): { bundle: Bundle; problems: string[] } {
  const problems: string[] = []
  const bundle: Bundle = { dir, kustomization: {}, manifests: [] }
  const path = join(dir, 'kustomization.yaml')
  if (!isFile(path)) return { bundle, problems: [`${path} does not exist`] }
  const [kustomization] = readYaml(path, 'kustomization.yaml', problems)
  if (!isObject(kustomization)) {
    problems.push('kustomization.yaml: expected a mapping')
    return { bundle, problems }
  }
  bundle.kustomization = kustomization
  if (
    kustomization['apiVersion'] !== 'kustomize.config.k8s.io/v1beta1' ||
    kustomization['kind'] !== 'Kustomization'
  ) {
    problems.push(
      'kustomization.yaml: expected apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization',
    )
  }
  for (const resource of strings(kustomization['resources'])) {
    if (!isFile(join(dir, resource))) {
      problems.push(`kustomization.yaml: resource ${resource} does not exist`)
      continue
    }
    for (const doc of readYaml(join(dir, resource), resource, problems)) {
      if (isObject(doc)) bundle.manifests.push({ file: resource, doc })
      else problems.push(`${resource}: expected a Kubernetes object`)
    }
  }
  bundle.manifests.push(...generated(dir, kustomization, problems))
  return { bundle, problems }
}
