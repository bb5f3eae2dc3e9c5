/**
 * `npm run check:deploy`: the Dockerfile, .dockerignore and deploy/kubernetes, checked offline
 * (no Docker engine, cluster or kustomize needed). Prints every problem and exits 1 if any.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { loadBundle } from './bundle.js'
import { checkDockerfile, imageOf } from './dockerfile.js'
import { checkBundle } from './kubernetes.js'

export interface DeployCheck {
  problems: string[]
  manifests: number
}

/** Checks the Dockerfile and deploy/kubernetes of the repository at `root` together. */
export function checkDeploy(root: string): DeployCheck {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8')
  const ignorePath = join(root, '.dockerignore')
  const problems = checkDockerfile(
    dockerfile,
    existsSync(ignorePath) ? readFileSync(ignorePath, 'utf8') : '',
  )
  const { bundle, problems: loading } = loadBundle(join(root, 'deploy', 'kubernetes'))
  problems.push(...loading, ...checkBundle(bundle, imageOf(dockerfile)))
  return { problems, manifests: bundle.manifests.length }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { problems, manifests } = checkDeploy(resolve(import.meta.dirname, '..', '..'))
  for (const p of problems) process.stderr.write(`${p}\n`)
  if (problems.length > 0) process.exit(1)
  process.stdout.write(
    `ok: Dockerfile, .dockerignore and ${manifests} objects in deploy/kubernetes\n`,
  )
}
