/**
 * Input and output domain, from what was observed: arguments against pinned schemas and the
 * redactor (IO-1), the sandbox probe (IO-2), PII guardrails with the detectors' self-test and the
 * audit's PII counts (IO-3), spotlighting (IO-4) and invisible-character removal (IO-5).
 *
 * @module
 */
import type { Config } from '../../config/index.js'
import type { LockFile } from '../../registry/index.js'
import type { AuditFacts } from './audit.js'
import {
  redactionProbe,
  schemaFacts,
  spotlightProbe,
  unicodeProbe,
  type SchemaFacts,
  type SpotlightProbe,
} from './io-probes.js'
import { piiControl, piiFacts, type PiiFacts } from './pii.js'
import type { SandboxFacts } from './sandbox.js'
import type { Control, ControlStatus, DetectorProbe } from './types.js'
import { configName } from './util.js'

export interface IoFacts {
  schemas: SchemaFacts
  redaction: { raw: boolean; base64: boolean }
  unicode: Array<{ name: string; removed: boolean }>
  /** Present when `guardrails.spotlight` is on. */
  spotlight?: SpotlightProbe
  pii: PiiFacts
}

export function ioFacts(
  config: Config,
  lock: LockFile | undefined,
  options: { detectorProbe?: DetectorProbe },
): IoFacts {
  return {
    schemas: schemaFacts(config, lock),
    redaction: redactionProbe(),
    unicode: unicodeProbe(),
    ...(config.guardrails.spotlight ? { spotlight: spotlightProbe() } : {}),
    pii: piiFacts(config, options.detectorProbe),
  }
}

function schemaControl(config: Config, io: IoFacts): Control {
  const { schemas: s, redaction } = io
  const unpinned = s.servers.filter((x) => x.pinnedTools === undefined).map((x) => x.server)
  const probesHold = s.probe.badRefused && s.probe.goodAccepted && redaction.raw && redaction.base64
  const pinsHold =
    config.lock !== undefined &&
    unpinned.length === 0 &&
    s.unpinnedExposed.length === 0 &&
    s.refusedEmpty === s.pinnedRequired
  const l = config.limits
  return {
    id: 'IO-1',
    domain: 'input and output',
    control:
      'Arguments validated against the pinned input schema before policy; results and logs size-capped and redacted of granted secrets',
    status: probesHold && pinsHold ? 'enforced' : 'partial',
    observed: `read the lock's pins for ${s.servers.length} configured server(s); ran validateArgs on {} against ${s.pinnedRequired} pinned schemas with required fields (${s.refusedEmpty} refused) and on a probe schema; ran the redactor on a probe secret`,
    evidence: [
      config.lock === undefined
        ? 'no lock: arguments are validated against the live schemas, which nothing pins'
        : `pinned: ${s.servers.map((x) => `${x.server} ${x.pinnedTools ?? 'NOT PINNED'}`).join(', ') || 'no servers'}`,
      ...(s.unpinnedExposed.length
        ? [`unpinned tools exposed for: ${s.unpinnedExposed.join(', ')}`]
        : []),
      `probe schema: a string for an integer field ${s.probe.badRefused ? `refused (${s.probe.message})` : 'ACCEPTED'}; an integer ${s.probe.goodAccepted ? 'accepted' : 'REFUSED'}`,
      `redactor: a registered secret ${redaction.raw ? 'removed' : 'LEFT'} raw, ${redaction.base64 ? 'removed' : 'LEFT'} base64-encoded`,
      `maxArgsBytes ${l.maxArgsBytes}, maxResultBytes ${l.maxResultBytes}, maxOutputBytes ${l.maxOutputBytes}, maxLogBytes ${l.maxLogBytes}`,
    ],
  }
}

function sandboxStatus(sb: SandboxFacts): ControlStatus {
  if (sb.error !== undefined) return 'not-observed'
  const m = sb.memory
  const zeroed =
    m?.needleAfterRun === true && !m.needleAtStart && m.nonZeroBytesBeforeInstantiation === 0
  const fresh = sb.freshGlobals === true && new Set(sb.instances).size === 2
  return sb.ambient.length === 0 && fresh && zeroed ? 'enforced' : 'partial'
}

function sandboxControl(config: Config, sb: SandboxFacts): Control {
  const m = sb.memory
  const l = config.limits
  return {
    id: 'IO-2',
    domain: 'input and output',
    control: 'Model code runs in a fresh QuickJS WebAssembly instance with no ambient capability',
    status: sandboxStatus(sb),
    observed: sb.error
      ? `the sandbox probe did not run: ${sb.error}`
      : "ran two executions in a fresh one-worker pool with this config's limits, scanning their memories for a needle the first one left",
    evidence: sb.error
      ? [
          `timeoutMs ${l.timeoutMs}, memoryBytes ${l.memoryBytes}, stackBytes ${l.stackBytes} (read, not probed)`,
        ]
      : [
          `host globals defined in the sandbox: ${sb.ambient.length ? sb.ambient.join(', ') : 'none'}`,
          `a global set by one execution is ${sb.freshGlobals ? 'undefined' : 'STILL DEFINED'} in the next; instances ${sb.instances.join(' then ')}`,
          m
            ? `the second execution's memory${m.recycledFrom ? ` (recycled from ${m.recycledFrom})` : ''}: ${m.nonZeroBytesBeforeInstantiation} non-zero bytes before instantiation; the first one's needle ${m.needleAtStart ? 'FOUND' : 'not found'} at its start (and ${m.needleAfterRun ? 'found' : 'NOT found, so the scan proves nothing'} after the first run)`
            : 'memory not inspected',
          `timeoutMs ${l.timeoutMs}, memoryBytes ${l.memoryBytes}, stackBytes ${l.stackBytes}`,
        ],
  }
}

function spotlightControl(config: Config, io: IoFacts): Control {
  const p = io.spotlight
  return {
    id: 'IO-4',
    domain: 'input and output',
    control:
      'Tool-originated text reaching the model is fenced with per-execution random delimiters (spotlighting)',
    status:
      p === undefined ? 'absent' : p.freshIds && p.forgedCloseDefanged ? 'enforced' : 'partial',
    observed: `read guardrails.spotlight in ${configName(config)}${p ? '; fenced a probe text holding a forged close' : ''}`,
    evidence: p
      ? [
          `two fences ${p.freshIds ? 'got different 80-bit ids' : 'did NOT get fresh 80-bit ids'}`,
          `a forged close inside the text ${p.forgedCloseDefanged ? 'was defanged' : 'STILL CLOSES the fence'}`,
        ]
      : ['guardrails.spotlight: false (tool text reaches the model unfenced)'],
  }
}

function unicodeControl(io: IoFacts): Control {
  const kept = io.unicode.filter((u) => !u.removed)
  return {
    id: 'IO-5',
    domain: 'input and output',
    control:
      'Invisible characters (tag block, zero-width, bidi controls) are removed from messages, errors and tool descriptions that reach the model',
    status: kept.length === 0 ? 'enforced' : 'partial',
    observed: `ran stripInvisible and cleanMessage (src/text.ts) on ${io.unicode.length} probe strings: ${io.unicode.length - kept.length}/${io.unicode.length} classes removed`,
    evidence: io.unicode.map((u) => `${u.name}: ${u.removed ? 'removed' : 'KEPT'}`),
  }
}

export function ioDomain(
  config: Config,
  io: IoFacts,
  sb: SandboxFacts,
  audit: AuditFacts,
): Control[] {
  return [
    schemaControl(config, io),
    sandboxControl(config, sb),
    piiControl(config, io.pii, audit),
    spotlightControl(config, io),
    unicodeControl(io),
  ]
}
