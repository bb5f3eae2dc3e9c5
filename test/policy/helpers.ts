/**
 * Shared helpers of the policy tests: policy files in a temp folder, principals, tools.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  loadPolicies,
  type PolicyInput,
  type PolicySet,
  type PolicyToolInput,
} from '../../src/policy/index.js'
import type { Principal } from '../../src/types.js'

export interface TempDir {
  readonly dir: string
  write(name: string, text: string): string
  cleanup(): void
}

export function tempDir(prefix = 'sluice-policy-'): TempDir {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return {
    dir,
    write(name, text) {
      const file = join(dir, name)
      writeFileSync(file, text)
      return file
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

let counter = 0

/** Loads one policy from YAML text written to a fresh file in `tmp`. */
export function policyFrom(tmp: TempDir, yaml: string): PolicySet {
  counter += 1
  return loadPolicies([tmp.write(`policy-${counter}.yaml`, yaml)])
}

export function principal(overrides: Partial<Principal> = {}): Principal {
  return { sub: 'alice', iss: 'local', scopes: [], claims: {}, authMethod: 'local', ...overrides }
}

export function tool(
  server: string,
  name: string,
  annotations: Record<string, unknown> = {},
): PolicyToolInput {
  return { server, name, annotations, hash: 'sha256:test' }
}

export function call(
  t: PolicyToolInput,
  args: Record<string, unknown> = {},
  extra: Partial<PolicyInput> = {},
): PolicyInput {
  return {
    principal: principal(),
    tool: t,
    args,
    execution: { id: 'exec-1', callCount: 0 },
    ...extra,
  }
}

export { failure } from '../helpers/errors.js'
