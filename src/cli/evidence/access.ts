/**
 * Access and privilege domain: CEL policy per call (ACC-1), per-server credential grants
 * (ACC-2: the config read, its secret references looked up, the loader probed with a
 * passthrough grant), and least agency (ACC-3: limits read, and the sandbox probe's hits).
 *
 * @module
 */
import { existsSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { parseConfig, type Config, type Grant } from '../../config/index.js'
import { isSluiceError } from '../../errors.js'
import { casesFailing, policyObserved, type PolicyFacts } from './policy.js'
import type { SandboxFacts } from './sandbox.js'
import type { Control, ControlStatus } from './types.js'
import { configName, message } from './util.js'

export interface CredentialFacts {
  servers: Array<{ server: string; grant: string; secrets: Array<{ ref: string; found: boolean }> }>
  /** The loader's answer to a config whose server asks for the caller's token to be passed on. */
  passthroughProbe: { refused: boolean; message: string }
}

/** Whether a secret reference points at something, without reading the secret. */
function secretFound(ref: string, baseDir: string): boolean {
  if (ref.startsWith('env:')) return (process.env[ref.slice(4)] ?? '') !== ''
  const path = ref.slice(5)
  return existsSync(isAbsolute(path) ? path : resolve(baseDir, path))
}

function secretRefs(grant: Grant | undefined): string[] {
  if (grant?.grant === 'static') return [grant.valueFrom]
  if (grant?.grant === 'token-exchange' && grant.clientSecretFrom) return [grant.clientSecretFrom]
  return []
}

function passthroughProbe(): CredentialFacts['passthroughProbe'] {
  const probe = { servers: { probe: { command: 'node', credentials: { grant: 'passthrough' } } } }
  try {
    parseConfig(probe, '<evidence probe>')
    return { refused: false, message: 'the config loaded' }
  } catch (cause) {
    return { refused: isSluiceError(cause, 'CONFIG_INVALID'), message: message(cause) }
  }
}

export function credentialFacts(config: Config): CredentialFacts {
  return {
    servers: Object.entries(config.servers).map(([server, s]) => ({
      server,
      grant: s.credentials?.grant ?? 'none',
      secrets: secretRefs(s.credentials).map((ref) => ({
        ref,
        found: secretFound(ref, config.baseDir),
      })),
    })),
    passthroughProbe: passthroughProbe(),
  }
}

function policyControl(pol: PolicyFacts): Control {
  const ok = pol.files.length > 0 && pol.loadError === undefined
  return {
    id: 'ACC-1',
    domain: 'access and privilege',
    control:
      'Every inner tool call is authorised by CEL policy with its arguments; deny by default; fail closed',
    status: ok ? (casesFailing(pol) ? 'partial' : 'enforced') : 'absent',
    observed: policyObserved(pol),
    evidence: pol.loadError
      ? [`policies do not load: ${pol.loadError}`]
      : [
          ...(pol.files.length
            ? pol.files.map((f) => `policy file ${f}`)
            : ['no policy files: every configured tool is allowed (run/stdio only)']),
          ...pol.rules.map((r) => `rule ${r.id} (${r.effect}): ${r.when}`),
          ...pol.budgets.map((b) => `budget ${b}`),
          ...pol.caseFiles.map((c) =>
            c.error
              ? `case file ${c.file}: does not run: ${c.error}`
              : `case file ${c.file}: ${c.passed} passing, ${c.failed} failing`,
          ),
          ...(pol.files.length && pol.caseFiles.length === 0
            ? ['no case files (*.cases.yaml) beside the policies']
            : []),
        ],
  }
}

function grantControl(config: Config, cred: CredentialFacts, sb: SandboxFacts): Control {
  const missing = cred.servers.flatMap((s) =>
    s.secrets.filter((x) => !x.found).map((x) => `${s.server}: ${x.ref}`),
  )
  const status: ControlStatus =
    cred.passthroughProbe.refused && missing.length === 0 && sb.ambient.length === 0
      ? 'enforced'
      : 'partial'
  return {
    id: 'ACC-2',
    domain: 'access and privilege',
    control:
      'Upstream credentials are granted per server, never passed through, never in the sandbox',
    status,
    observed: `read servers.*.credentials in ${configName(config)} (${cred.servers.length} servers), looked up ${cred.servers.reduce((n, s) => n + s.secrets.length, 0)} secret reference(s) without reading them; loaded a probe config with grant "passthrough": ${cred.passthroughProbe.refused ? 'refused' : 'NOT refused'}`,
    evidence: [
      ...(cred.servers.length
        ? cred.servers.map(
            (s) => `${s.server}: ${s.grant === 'none' ? 'no credentials' : `${s.grant} grant`}`,
          )
        : ['no servers configured']),
      ...missing.map((m) => `secret not found: ${m} (calls to that server fail with GRANT_FAILED)`),
      `passthrough probe: ${cred.passthroughProbe.message}`,
      sb.error
        ? 'sandbox globals: not probed'
        : `sandbox globals: a fresh sandbox defines ${sb.ambient.length ? sb.ambient.join(', ') : "none of process, require, fetch and the rest of IO-2's list"}`,
    ],
  }
}

function limitsControl(config: Config, sb: SandboxFacts): Control {
  const { callLimit, memoryLimit, timeout } = sb
  const hits = [
    callLimit && 'hostCalls' in callLimit
      ? callLimit.code === 'CALL_LIMIT' && callLimit.hostCalls === callLimit.limit
      : undefined,
    memoryLimit ? memoryLimit.code === 'MEMORY_LIMIT' : undefined,
    timeout ? timeout.code === 'TIMEOUT' : undefined,
  ]
  const status: ControlStatus =
    sb.error !== undefined ? 'not-observed' : hits.every((h) => h === true) ? 'enforced' : 'partial'
  return {
    id: 'ACC-3',
    domain: 'access and privilege',
    control: 'Least agency: per-execution limits on calls, concurrency, time, memory and sizes',
    status,
    observed: `read limits in ${configName(config)}; ${sb.error ? `the sandbox probe did not run: ${sb.error}` : 'ran the call, memory and time limits in a fresh sandbox'}`,
    evidence: [
      ...limitProbeLines(sb),
      ...Object.entries(config.limits).map(([k, v]) => `${k}: ${JSON.stringify(v)}`),
    ],
  }
}

function limitProbeLines({ callLimit, memoryLimit, timeout }: SandboxFacts): string[] {
  const lines: string[] = []
  if (callLimit && 'skipped' in callLimit)
    lines.push(`maxToolCalls ${callLimit.limit}: not probed (${callLimit.skipped})`)
  else if (callLimit)
    lines.push(
      `maxToolCalls ${callLimit.limit}: code asking for ${callLimit.limit + 1} calls got ${callLimit.hostCalls} to the host, then ${callLimit.code ?? 'no error'}`,
    )
  if (memoryLimit)
    lines.push(
      `memoryBytes ${memoryLimit.limitBytes}: allocating that much ended with ${memoryLimit.code ?? 'no error'}`,
    )
  if (timeout)
    lines.push(
      `a busy loop under a ${timeout.probeMs} ms deadline ended with ${timeout.code ?? 'no error'} after ${timeout.ms} ms (timeoutMs ${timeout.configuredMs} is the same check, not waited for)`,
    )
  return lines
}

export function accessDomain(
  config: Config,
  pol: PolicyFacts,
  cred: CredentialFacts,
  sb: SandboxFacts,
): Control[] {
  return [policyControl(pol), grantControl(config, cred, sb), limitsControl(config, sb)]
}
