/**
 * The upstreams' prompts and resources, proxied under the same policy as tools, so that clients
 * which use them keep working behind sluice.
 *
 * Names are namespaced per server so two servers never collide and every request routes to
 * exactly one upstream: the prompt `greet` of server `docs` is `docs__greet`; the resource
 * `file:///a.md` of server `fs` is `sluice://fs/file:///a.md` (templates likewise, so a URI a
 * client expands from a template routes back to its server).
 *
 * Policy sees a prompt or a resource as `tool` with `kind: "prompt"` or `kind: "resource"`,
 * `server`, `name` (the prompt's name, or the upstream URI or URI template), no annotations, and
 * the digest of what the upstream listed as `hash`. Listing uses the rules without `args`;
 * `prompts/get` is decided with the prompt's arguments as `args`, `resources/read` with
 * `args.uri`. Deny by default, deny wins, `approve` asks a human: exactly as for tools. Every
 * decision and result is audited (`tool` = `server.prompt/<name>` or `server.resource/<uri>`).
 *
 * @module
 */
import type { AuditEvent, AuditLog } from '../audit/index.js'
import { hashArgs } from '../audit/index.js'
import type { GrantBroker, Redactor } from '../auth/index.js'
import type { Config } from '../config/index.js'
import { isErrorCode, isSluiceError, SluiceError } from '../errors.js'
import type { PolicySet, ToolKind } from '../policy/index.js'
import type { SharedStore } from '../store/index.js'
import type { ExecutionError, Principal, SuspendedExecution } from '../types.js'
import {
  getPrompt,
  listPrompts,
  listResources,
  listResourceTemplates,
  readResource,
  type GetPromptResult,
  type Prompt,
  type ReadResourceResult,
  type Resource,
  type ResourceTemplate,
  type UpstreamSet,
} from '../upstream/index.js'
import { countEntries, type PiiCounts, type PiiGuard } from '../guard/index.js'
import { metrics } from '../telemetry/index.js'
import { admissionKey } from './admission.js'
import {
  auditPrincipal,
  vaultScope,
  type ApprovalAnswer,
  type ApprovalHandler,
} from './dispatch.js'
import { PASSTHROUGH_WORDING, saveSingle, takeRun } from './durable.js'
import { guardPassthrough } from './passthrough-guard.js'
import { sanitizeMessage } from './result.js'

/** Between a server name and its prompt's name: `docs__greet`. */
export const PROMPT_SEPARATOR = '__'
/** Scheme of a namespaced resource URI: `sluice://<server>/<upstream uri>`. */
export const RESOURCE_PREFIX = 'sluice://'

export interface PassthroughDeps {
  config: Config
  upstreams: UpstreamSet
  policy: PolicySet
  grants?: GrantBroker
  redactor?: Redactor
  audit?: AuditLog
  log?: (level: 'warn', message: string, fields?: Record<string, unknown>) => void
  /** `guardrails.pii`, unless absent or `off`: prompt and resource texts are tokenised. */
  pii?: PiiGuard
  /** Where a request stopped at its approval waits for the answer (`durable`). */
  store: SharedStore
}

export interface PassthroughOptions {
  signal?: AbortSignal
  inboundToken?: string
  approve?: ApprovalHandler
  /** The client's session: PII tokens are stable within it, as for `execute_code`. */
  session?: string
  /**
   * Approvals without a waiting request (2026-07-28): an `approve` rule stops the request,
   * which answers `{ suspended }`; `resume` carries the client's answer to it. `approve` is
   * then not used.
   */
  durable?: { resume?: { token: string; answer: 'accept' | 'decline' } }
}

/** A request that stopped at its approval: the question, and the token that answers it. */
export interface PassthroughSuspended {
  suspended: SuspendedExecution
}

/** The namespaced resource URI of `uri` on `server`. */
export function resourceUri(server: string, uri: string): string {
  return `${RESOURCE_PREFIX}${server}/${uri}`
}

/** Splits a namespaced resource URI; `undefined` when it is not one. */
export function parseResourceUri(uri: string): { server: string; uri: string } | undefined {
  if (!uri.startsWith(RESOURCE_PREFIX)) return undefined
  const rest = uri.slice(RESOURCE_PREFIX.length)
  const slash = rest.indexOf('/')
  if (slash <= 0 || slash === rest.length - 1) return undefined
  return { server: rest.slice(0, slash), uri: rest.slice(slash + 1) }
}

interface Subject {
  server: string
  kind: ToolKind
  name: string
  hash: string
}

export class Passthrough {
  readonly #deps: PassthroughDeps

  constructor(deps: PassthroughDeps) {
    this.#deps = deps
  }

  /** This principal's prompts of every server, namespaced; a server that fails is left out. */
  async listPrompts(principal: Principal): Promise<Prompt[]> {
    const perServer = await this.#each('prompts/list', (server, upstream) =>
      listPrompts(upstream, this.#listOptions(server)),
    )
    return perServer.flatMap(([server, prompts]) =>
      prompts
        .filter((p) => this.#listable(principal, subject(server, 'prompt', p.name, p)))
        .map((p) => ({ ...p, name: `${server}${PROMPT_SEPARATOR}${p.name}` })),
    )
  }

  /** This principal's resources of every server, with namespaced URIs. */
  async listResources(principal: Principal): Promise<Resource[]> {
    const perServer = await this.#each('resources/list', (server, upstream) =>
      listResources(upstream, this.#listOptions(server)),
    )
    return perServer.flatMap(([server, resources]) =>
      resources
        .filter((r) => this.#listable(principal, subject(server, 'resource', r.uri, r)))
        .map((r) => ({ ...r, uri: resourceUri(server, r.uri) })),
    )
  }

  /** This principal's resource templates of every server, with namespaced URI templates. */
  async listResourceTemplates(principal: Principal): Promise<ResourceTemplate[]> {
    const perServer = await this.#each('resources/templates/list', (server, upstream) =>
      listResourceTemplates(upstream, this.#listOptions(server)),
    )
    return perServer.flatMap(([server, templates]) =>
      templates
        .filter((t) => this.#listable(principal, subject(server, 'resource', t.uriTemplate, t)))
        .map((t) => ({ ...t, uriTemplate: resourceUri(server, t.uriTemplate) })),
    )
  }

  /**
   * Renders one prompt after policy allowed it with its arguments.
   *
   * @throws SluiceError `UNKNOWN_TOOL` (no such prompt), `TOOL_DENIED`, `APPROVAL_DENIED`, or
   *   the upstream's failure (`TOOL_ERROR` with `details.jsonRpcCode`, `TOOL_TIMEOUT`, …).
   */
  async getPrompt(
    principal: Principal,
    name: string,
    args: Readonly<Record<string, string>>,
    options: PassthroughOptions = {},
  ): Promise<GetPromptResult | PassthroughSuspended> {
    const found = await this.#findPrompt(name)
    if (found === undefined) {
      throw new SluiceError('UNKNOWN_TOOL', `unknown prompt ${name.slice(0, 128)}`)
    }
    const { server, prompt } = found
    const subj = subject(server, 'prompt', prompt.name, prompt)
    const result = await this.#authorised(
      principal,
      subj,
      { ...args },
      options,
      (upstream, headers) =>
        getPrompt(upstream, prompt.name, args, { ...this.#callOptions(server, options), headers }),
    )
    if ('suspended' in result) return result
    // Embedded resources and resource links name upstream URIs; namespaced, a client can read
    // them back through sluice (and policy decides that read like any other).
    return {
      ...result,
      messages: result.messages.map((m) => ({
        ...m,
        content: namespacedContent(server, m.content),
      })),
    }
  }

  /**
   * Reads one resource by its namespaced URI after policy allowed it (`args.uri` is the
   * upstream URI).
   *
   * @throws SluiceError `UNKNOWN_TOOL` (not a URI of a configured server), `TOOL_DENIED`,
   *   `APPROVAL_DENIED`, or the upstream's failure (its "resource not found" keeps its
   *   JSON-RPC code in `details.jsonRpcCode`).
   */
  async readResource(
    principal: Principal,
    uri: string,
    options: PassthroughOptions = {},
  ): Promise<ReadResourceResult | PassthroughSuspended> {
    const parsed = parseResourceUri(uri)
    if (parsed === undefined || this.#deps.upstreams.get(parsed.server) === undefined) {
      throw new SluiceError(
        'UNKNOWN_TOOL',
        `unknown resource ${uri.slice(0, 256)}: sluice serves resources as ${RESOURCE_PREFIX}<server>/<uri>, from resources/list`,
      )
    }
    const subj: Subject = {
      server: parsed.server,
      kind: 'resource',
      name: parsed.uri,
      hash: hashArgs(parsed.uri),
    }
    const result = await this.#authorised(
      principal,
      subj,
      { uri: parsed.uri },
      options,
      (upstream, headers) =>
        readResource(upstream, parsed.uri, {
          ...this.#callOptions(parsed.server, options),
          headers,
        }),
    )
    if ('suspended' in result) return result
    return {
      ...result,
      contents: result.contents.map((c) => ({ ...c, uri: resourceUri(parsed.server, c.uri) })),
    }
  }

  // ── policy, credentials, audit ───────────────────────────────────────────────────────────

  #listable(principal: Principal, s: Subject): boolean {
    return this.#deps.policy.canList({ principal, tool: policySubject(s, this.#deps.config) })
  }

  async #authorised<T extends object>(
    principal: Principal,
    s: Subject,
    args: Record<string, unknown>,
    options: PassthroughOptions,
    work: (
      upstream: NonNullable<ReturnType<UpstreamSet['get']>>,
      headers: Record<string, string>,
    ) => Promise<T>,
  ): Promise<T | PassthroughSuspended> {
    const label = `${s.server}.${s.kind}/${s.name}`
    const started = performance.now()
    const record = (
      type: 'call.decision' | 'call.result',
      fields: Omit<AuditEvent, 'type' | 'principal' | 'tool' | 'toolHash' | 'argsHash'>,
    ) =>
      this.#deps.audit?.append({
        type,
        principal: auditPrincipal(principal),
        tool: label,
        toolHash: s.hash,
        argsHash: hashArgs(args),
        ...fields,
      })
    const decision = this.#deps.policy.decide({
      principal,
      tool: policySubject(s, this.#deps.config),
      args,
    })
    if (decision.effect === 'deny') {
      await record('call.decision', {
        decision: 'deny',
        ruleId: decision.ruleId,
        code: 'TOOL_DENIED',
      })
      throw new SluiceError('TOOL_DENIED', `${s.kind} ${label} is not allowed: ${decision.reason}`)
    }
    if (decision.effect === 'approve') {
      const question = {
        tool: label,
        argsSummary: this.#summary(args),
        ruleId: decision.ruleId,
        reason: decision.reason,
      }
      const requestHash = hashArgs({ server: s.server, kind: s.kind, name: s.name, args })
      let answer: ApprovalAnswer
      if (options.durable?.resume !== undefined) {
        answer = await this.#resumed(principal, options.durable.resume, requestHash)
      } else if (options.durable !== undefined) {
        const suspended = await this.#suspend(principal, s, requestHash, question)
        await record('call.decision', {
          decision: 'approve',
          ruleId: decision.ruleId,
          status: 'suspended',
          code: 'APPROVAL_DENIED',
        })
        return { suspended }
      } else {
        answer = options.approve ? await options.approve({ ...question, index: 0 }) : 'unsupported'
      }
      if (answer !== 'accept') {
        await record('call.decision', {
          decision: 'approve',
          ruleId: decision.ruleId,
          status: answer,
          code: 'APPROVAL_DENIED',
        })
        throw new SluiceError(
          'APPROVAL_DENIED',
          `${label} was not read: ${answer === 'decline' ? 'the human approver declined it' : answer === 'timeout' ? `no human answered within gateway.approvalTimeoutMs (${this.#deps.config.gateway.approvalTimeoutMs} ms)` : 'it needs human approval and this client cannot be asked'} (rule ${decision.ruleId})`,
        )
      }
    }
    const upstream = this.#deps.upstreams.get(s.server)
    if (upstream === undefined)
      throw new SluiceError('UNKNOWN_TOOL', `server ${s.server} is not configured`)
    const headers = await this.#headers(s.server, principal, options)
    await record('call.decision', {
      decision: decision.effect === 'approve' ? 'approved' : 'allow',
      ruleId: decision.ruleId,
    })
    const ms = () => Math.round(performance.now() - started)
    const guard = {
      ...(this.#deps.pii ? { pii: this.#deps.pii } : {}),
      spotlight: this.#deps.config.guardrails.spotlight === true,
      scope: vaultScope(principal, options.session),
      labels: policySubject(s, this.#deps.config).labels,
    }
    let result: T
    try {
      result = await work(upstream, headers)
    } catch (cause) {
      const code = isSluiceError(cause) ? cause.code : 'TOOL_ERROR'
      const message = isSluiceError(cause)
        ? cause.message
        : `${label}: ${sanitizeMessage(String(cause))}`
      // The upstream's words reach the model: the same guardrails as a result's text.
      const guarded = await guardPassthrough({ text: message }, guard)
      await record('call.result', { status: 'error', code, ms: ms(), ...piiField(guarded.counts) })
      countDetections(guarded.counts)
      if (guarded.value.text === message && isSluiceError(cause)) throw cause
      throw new SluiceError(code, guarded.value.text, {
        cause,
        ...(isSluiceError(cause) && cause.details ? { details: cause.details } : {}),
      })
    }
    const redactor = this.#deps.redactor
    const redacted = redactor ? (redactor.redactJson(result as never) as T) : result
    const guarded = await guardPassthrough(redacted, guard)
    await record('call.result', { status: 'ok', ms: ms(), ...piiField(guarded.counts) })
    countDetections(guarded.counts)
    return guarded.value
  }

  /** The client's answer to a stopped request, once, for that very request. */
  async #resumed(
    principal: Principal,
    resume: { token: string; answer: 'accept' | 'decline' },
    requestHash: string,
  ): Promise<ApprovalAnswer> {
    const taken = await takeRun(
      this.#deps.store,
      admissionKey(principal),
      resume.token,
      requestHash,
      this.#deps.config.gateway.approvalTimeoutMs,
      PASSTHROUGH_WORDING,
    )
    if (!taken.ok) throw durableError(taken.error)
    return resume.answer
  }

  /** Keeps a request stopped at its approval until the client answers. */
  async #suspend(
    principal: Principal,
    s: Subject,
    requestHash: string,
    question: SuspendedExecution['question'],
  ): Promise<SuspendedExecution> {
    const saved = await saveSingle(
      this.#deps.store,
      admissionKey(principal),
      requestHash,
      requestHash,
      { server: s.server, tool: `${s.kind}/${s.name}`, index: 0, request: question },
      this.#deps.config.gateway,
    )
    if (!saved.ok) throw durableError(saved.error)
    return saved.suspended
  }

  async #headers(
    server: string,
    principal: Principal,
    options: PassthroughOptions,
  ): Promise<Record<string, string>> {
    const credentials = this.#deps.config.servers[server]?.credentials
    if (credentials === undefined || this.#deps.grants === undefined) return {}
    return this.#deps.grants.headersFor(server, credentials, {
      principal,
      ...(options.inboundToken ? { inboundToken: options.inboundToken } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    })
  }

  #summary(args: Record<string, unknown>): string {
    const raw = JSON.stringify(args)
    return this.#deps.redactor ? this.#deps.redactor.redact(raw) : raw
  }

  // ── upstreams ────────────────────────────────────────────────────────────────────────────

  /** Runs `list` on every configured server in parallel; a failure is logged and skipped. */
  async #each<T>(
    method: string,
    list: (server: string, upstream: NonNullable<ReturnType<UpstreamSet['get']>>) => Promise<T[]>,
  ): Promise<Array<[string, T[]]>> {
    const servers = this.#deps.upstreams.names()
    const settled = await Promise.allSettled(
      servers.map((server) => list(server, this.#deps.upstreams.get(server)!)),
    )
    return settled.map((r, i) => {
      const server = servers[i]!
      if (r.status === 'fulfilled') return [server, r.value]
      this.#deps.log?.(
        'warn',
        `cannot ${method} on ${server}: ${sanitizeMessage(String(r.reason))}`,
      )
      return [server, []]
    })
  }

  /** The prompt a namespaced name stands for; the server is the one whose listing has it. */
  async #findPrompt(name: string): Promise<{ server: string; prompt: Prompt } | undefined> {
    for (const server of this.#deps.upstreams.names()) {
      const prefix = `${server}${PROMPT_SEPARATOR}`
      if (!name.startsWith(prefix) || name.length === prefix.length) continue
      const upstream = this.#deps.upstreams.get(server)!
      const prompts = await listPrompts(upstream, this.#listOptions(server))
      const prompt = prompts.find((p) => p.name === name.slice(prefix.length))
      if (prompt !== undefined) return { server, prompt }
    }
    return undefined
  }

  #listOptions(server: string) {
    return { timeoutMs: this.#timeoutMs(server) }
  }

  #callOptions(server: string, options: PassthroughOptions) {
    return {
      timeoutMs: this.#timeoutMs(server),
      ...(options.signal ? { signal: options.signal } : {}),
    }
  }

  #timeoutMs(server: string): number {
    return this.#deps.config.servers[server]?.timeoutMs ?? this.#deps.config.limits.callTimeoutMs
  }
}

function namespacedContent<C extends { type: string }>(server: string, content: C): C {
  const c = content as C & { uri?: unknown; resource?: { uri?: unknown } }
  if (c.type === 'resource_link' && typeof c.uri === 'string')
    return { ...c, uri: resourceUri(server, c.uri) }
  if (c.type === 'resource' && typeof c.resource?.uri === 'string')
    return { ...c, resource: { ...c.resource, uri: resourceUri(server, c.resource.uri) } }
  return content
}

/** A store's refusal (`APPROVAL_DENIED`, or `OVERLOADED` with when to retry) as a thrown error. */
function durableError(error: ExecutionError): SluiceError {
  return new SluiceError(isErrorCode(error.code) ? error.code : 'INTERNAL', error.message, {
    ...(error.retryAfterMs === undefined ? {} : { details: { retryAfterMs: error.retryAfterMs } }),
  })
}

function piiField(counts: PiiCounts): { pii?: PiiCounts } {
  return Object.keys(counts).length === 0 ? {} : { pii: counts }
}

function countDetections(counts: PiiCounts): void {
  for (const [kind, n] of countEntries(counts))
    metrics.piiDetections.inc({ kind, boundary: 'model' }, n)
}

function subject(server: string, kind: ToolKind, name: string, listed: object): Subject {
  return { server, kind, name, hash: hashArgs(listed) }
}

/**
 * A prompt or resource as policy sees it: `tool.labels` are its server's labels (per-tool
 * labels belong to tools; a prompt may share a tool's name).
 */
function policySubject(s: Subject, config: Pick<Config, 'servers'>) {
  return {
    server: s.server,
    kind: s.kind,
    name: s.name,
    annotations: {},
    hash: s.hash,
    labels: [...(config.servers[s.server]?.labels ?? [])].sort(),
  }
}
