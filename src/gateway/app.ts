/**
 * The HTTP gateway: a fastify 5 app serving MCP Streamable HTTP at `/mcp` (stateful sessions),
 * health, readiness, metrics and RFC 9728 metadata. Order of checks on `/mcp`, cheapest and
 * least trusting first: Host → Origin → token (before any body is read) → body size and JSON →
 * batch → session. Every refusal is a JSON-RPC error body with a clear, secret-free message.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import {
  createTokenVerifier,
  isResourceUrl,
  localPrincipal,
  principalFromPeerCertificate,
  resourceMetadata,
  wwwAuthenticate,
  type TokenVerifier,
} from '../auth/index.js'
import type { Config } from '../config/index.js'
import { isSluiceError } from '../errors.js'
import type { GatewayEngine } from './contracts.js'
import { RPC, createEdgePolicy, headerCount, rpcError, toolCallOf } from './edge.js'
import { EXECUTE_CODE } from './render.js'
import { createMcpServer, type Extra, type RequestIdentity } from './mcp-server.js'
import { createModernHandler, isLegacyRequest } from './modern.js'
import { authInfoOf, identityOf } from './surface.js'
import { EventBuffer, type SessionEvents } from './event-store.js'
import {
  DEFAULT_MAX_SESSIONS,
  DEFAULT_SESSION_IDLE_MS,
  SessionStore,
  samePrincipal,
} from './sessions.js'

export const MCP_PATH = '/mcp'
export const PRM_PATH = '/.well-known/oauth-protected-resource'
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** Upstream states that count as down for `/readyz` (src/upstream's `UpstreamState`). */
const DOWN_STATES: ReadonlySet<string> = new Set(['backoff', 'closed'])

export interface GatewayDeps {
  config: Config
  engine: GatewayEngine
  /** Inbound token verification; default: `createTokenVerifier(config.identity)` when identity is set. */
  verifier?: TokenVerifier
  /** fastify's pino logger options (`true` for defaults); query strings are never logged. */
  logger?: boolean | Record<string, unknown>
  /** Prometheus text for `GET /metrics`. */
  metrics?: () => string
  /** The active config's hash, for `/readyz` (changes with each reload). */
  configHash?: () => string
  /**
   * Serve without identity: every request is the config's local principal. The CLI allows it
   * only on a loopback bind.
   */
  insecureDev?: boolean
  /** The gateway's public base URL (`https://mcp.example.com`), for metadata links and Host checks. */
  publicUrl?: string
  /** The bound host, accepted in the Host header (wildcard binds add nothing). */
  host?: string
  /** Sessions idle this long are closed; default 30 min. */
  sessionIdleMs?: number
  /** Told when a session was closed for being idle (logs, tests). */
  onSessionIdleClose?: (id: string) => void
  /** Cap on concurrent MCP sessions; default 1000. */
  maxSessions?: number
}

/** The authenticated caller of one HTTP request, kept off the request object the SDK sees. */
const identities = new WeakMap<IncomingMessage, RequestIdentity>()

/** Drops the query string: a token there (JWT-13) must not reach the logs. */
function pathOnly(url: string | undefined): string {
  const u = url ?? ''
  const q = u.indexOf('?')
  return q === -1 ? u : u.slice(0, q)
}

function loggerOptions(logger: GatewayDeps['logger']): false | Record<string, unknown> {
  if (logger === undefined || logger === false) return false
  const base = logger === true ? {} : logger
  return {
    ...base,
    // Ours last: a caller's `req` serializer must not bring query strings back.
    serializers: {
      ...((base['serializers'] as Record<string, unknown> | undefined) ?? {}),
      req: (req: { method?: string; url?: string }) => ({
        method: req.method,
        url: pathOnly(req.url),
      }),
    },
  }
}

function tlsOptions(config: Config): Record<string, unknown> | undefined {
  const tls = config.gateway.tls
  if (tls === undefined) return undefined
  return {
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    ...(tls.caFile === undefined ? {} : { ca: readFileSync(tls.caFile) }),
    // Unverified certificates are still requested, then refused per request with a clear message.
    requestCert: tls.requestClientCert,
    rejectUnauthorized: false,
  }
}

function send(
  reply: FastifyReply,
  status: number,
  message: string,
  code: number = RPC.SERVER_ERROR,
): FastifyReply {
  return reply.code(status).header('content-type', 'application/json').send(rpcError(code, message))
}

function stripBearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const m = /^Bearer (\S+)$/i.exec(header.trim())
  return m?.[1]
}

function traceContextOf(req: FastifyRequest): Record<string, string> | undefined {
  const traceparent = req.headers['traceparent']
  if (typeof traceparent !== 'string') return undefined
  const tracestate = req.headers['tracestate']
  return { traceparent, ...(typeof tracestate === 'string' ? { tracestate } : {}) }
}

/** The fastify request as a web `Request` for SDK 2.x; the body travels parsed, beside it. */
function webRequest(req: FastifyRequest, signal: AbortSignal): Request {
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'content-length') continue
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v)
  }
  return new Request(`http://${req.host}${pathOnly(req.url)}`, {
    method: req.method,
    headers,
    signal,
  })
}

/** Streams a web `Response` (JSON or SSE) to the raw Node response; ends it in every case. */
async function writeWebResponse(res: Response, raw: ServerResponse): Promise<void> {
  const headers: Record<string, string> = {}
  res.headers.forEach((value, name) => {
    headers[name] = value
  })
  raw.writeHead(res.status, headers)
  if (res.body === null) return void raw.end()
  const reader = res.body.getReader()
  const cancel = (): void => void reader.cancel().catch(() => undefined)
  raw.once('close', cancel)
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      if (!raw.write(value)) await new Promise((resolve) => raw.once('drain', resolve))
    }
  } finally {
    raw.off('close', cancel)
    raw.end()
  }
}

/** A transport that threw after `hijack()`: logged, and a 500 when nothing was sent yet. */
function transportFailed(req: FastifyRequest, reply: FastifyReply, err: unknown): void {
  req.log.error({ err }, 'MCP transport failed')
  if (reply.raw.headersSent) return
  reply.raw.writeHead(500, { 'content-type': 'application/json' })
  reply.raw.end(JSON.stringify(rpcError(RPC.INTERNAL_ERROR, 'Internal error')))
}

/**
 * Builds the gateway app. Throws `TypeError` on a wiring mistake (no identity and no
 * `insecureDev`); never at request time.
 *
 * @example
 * const app = buildApp({ config, engine, publicUrl: 'https://mcp.example.com' })
 * await listen(app, { host: '127.0.0.1', port: 8787 })
 */
export function buildApp(deps: GatewayDeps): FastifyInstance {
  const { config, engine } = deps
  const identity = config.identity
  const verifier =
    deps.verifier ?? (identity === undefined ? undefined : createTokenVerifier(identity))
  if (verifier === undefined && deps.insecureDev !== true) {
    throw new TypeError(
      'the gateway needs identity (config.identity or a verifier), or insecureDev on loopback',
    )
  }
  const devPrincipal = localPrincipal(identity?.local)
  const ownUrls = [
    deps.publicUrl,
    identity?.audience,
    deps.host === undefined ? undefined : `http://${deps.host}`,
  ].filter((u): u is string => u !== undefined)
  const edge = createEdgePolicy({
    allowedHosts: config.gateway.allowedHosts,
    allowedOrigins: config.gateway.allowedOrigins,
    ownUrls,
  })
  const sessions = new SessionStore({
    idleMs: deps.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS,
    maxSessions: deps.maxSessions ?? DEFAULT_MAX_SESSIONS,
    ...(deps.onSessionIdleClose ? { onIdleClose: deps.onSessionIdleClose } : {}),
  })
  const https = tlsOptions(config)
  // Resumable SSE for 2025-11-25 sessions: one byte budget for the process (event-store.ts).
  const resumability = config.gateway.resumability
  const events =
    resumability.maxBytes === 0
      ? undefined
      : new EventBuffer({
          maxEventsPerStream: resumability.maxEventsPerStream,
          maxBytes: resumability.maxBytes,
        })
  const sessionEvents = new WeakMap<StreamableHTTPServerTransport, SessionEvents>()
  const modern = createModernHandler({
    engine,
    config,
    maxBodyBytes: config.gateway.maxBodyBytes,
    onError: (err) => app.log.warn({ err }, 'MCP 2026-07-28 request failed'),
  })

  const app = Fastify({
    logger: loggerOptions(deps.logger),
    // One line per request (below), not fastify's two: under load the log is a cost per request.
    disableRequestLogging: true,
    bodyLimit: config.gateway.maxBodyBytes,
    // SSE streams would otherwise hold `close()` open until clients leave.
    forceCloseConnections: true,
    ...(https === undefined ? {} : { https }),
  }) as unknown as FastifyInstance

  app.addHook('onResponse', async (req, reply) => {
    req.log.info(
      { req, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime },
      'request completed',
    )
  })

  const baseUrl = (req: FastifyRequest): string => {
    if (deps.publicUrl !== undefined) return deps.publicUrl.replace(/\/+$/, '')
    if (identity !== undefined) {
      try {
        return new URL(identity.audience).origin
      } catch {
        // An audience that is no URL: fall back to the request's own origin.
      }
    }
    return `${req.protocol}://${req.host}`
  }
  // RFC 9728 requires `resource` to be a URL; an audience that is no URL (a JWT `aud` may be any
  // string) gives way to the gateway's own /mcp URL, and the CLI warns about it at start.
  const resourceUrl = (req: FastifyRequest): string =>
    identity !== undefined && isResourceUrl(identity.audience)
      ? identity.audience
      : `${baseUrl(req)}${MCP_PATH}`
  const metadataUrl = (req: FastifyRequest): string => `${baseUrl(req)}${PRM_PATH}`

  async function authenticate(req: FastifyRequest): Promise<RequestIdentity> {
    const traceContext = traceContextOf(req)
    const base = traceContext === undefined ? {} : { traceContext }
    if (verifier === undefined) return { principal: devPrincipal, ...base }
    const raw = req.raw.rawHeaders
    const values: string[] = []
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]?.toLowerCase() === 'authorization') values.push(raw[i + 1] ?? '')
    }
    if (values.length === 0) {
      const socket = req.raw.socket as Partial<TLSSocket>
      if (
        config.gateway.tls?.requestClientCert === true &&
        typeof socket.getPeerCertificate === 'function'
      ) {
        const cert = socket.getPeerCertificate()
        if (cert !== null && Object.keys(cert).length > 0) {
          return {
            principal: principalFromPeerCertificate(cert, {
              authorized: socket.authorized === true,
            }),
            ...base,
          }
        }
      }
    }
    const principal = await verifier.verify(values.length > 1 ? values : values[0])
    const token = stripBearer(values[0])
    return { principal, ...(token === undefined ? {} : { token }), ...base }
  }

  function refuseAuth(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
    const prm = metadataUrl(req)
    if (isSluiceError(err, 'AUTH_REQUIRED')) {
      const hint =
        typeof (req.query as Record<string, unknown> | undefined)?.['access_token'] === 'string'
          ? ' (a token in the URL is ignored: use the Authorization header)'
          : ''
      reply.header('www-authenticate', wwwAuthenticate(prm))
      return send(reply, 401, `Unauthorized: ${err.message}${hint}`)
    }
    if (isSluiceError(err, 'AUTH_INVALID')) {
      reply.header(
        'www-authenticate',
        wwwAuthenticate(prm, 'invalid_token', { description: err.message }),
      )
      return send(reply, 401, `Unauthorized: ${err.message}`)
    }
    if (isSluiceError(err, 'AUTH_FORBIDDEN')) {
      const scope = err.details?.['scope']
      reply.header(
        'www-authenticate',
        wwwAuthenticate(prm, 'insufficient_scope', typeof scope === 'string' ? { scope } : {}),
      )
      return send(reply, 403, `Forbidden: ${err.message}`)
    }
    req.log.error({ err }, 'token verification failed unexpectedly')
    return send(reply, 500, 'Internal error while verifying the token', RPC.INTERNAL_ERROR)
  }

  async function edgeChecks(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const rawHeaders = req.raw.rawHeaders
    // Node keeps only the first Host; a second one is a smuggling attempt, not a typo.
    if (headerCount(rawHeaders, 'host') > 1)
      return void send(reply, 400, 'Bad Request: more than one Host header')
    const hostRefusal = edge.checkHost(req.headers.host)
    if (hostRefusal !== undefined) return void send(reply, 403, hostRefusal)
    const origin = req.headers.origin
    const originRefusal = edge.checkOrigin(
      typeof origin === 'string' ? origin : undefined,
      req.headers.host,
    )
    if (originRefusal !== undefined) return void send(reply, 403, originRefusal)
    try {
      identities.set(req.raw, await authenticate(req))
    } catch (err) {
      return void refuseAuth(req, reply, err)
    }
  }

  function openSession(who: RequestIdentity): {
    transport: StreamableHTTPServerTransport
    server: Server
  } {
    let server: Server | undefined
    const held = events?.session()
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.add({ id, transport, server: server!, principal: who.principal })
      },
      onsessionclosed: (id) => sessions.remove(id),
      ...(held === undefined ? {} : { eventStore: held, retryInterval: resumability.retryMs }),
    })
    if (held !== undefined) sessionEvents.set(transport, held)
    transport.onclose = () => {
      held?.release()
      if (transport.sessionId !== undefined) sessions.remove(transport.sessionId)
    }
    server = createMcpServer({
      engine,
      config,
      identify: (extra: Extra) => identityOf(extra.authInfo),
      onInternalError: (err) => app.log.error({ err }, 'engine failed'),
    })
    return { transport, server }
  }

  /**
   * Admission at the edge: an execution that would be refused is answered now, with the status
   * a load balancer understands (503/429) and Retry-After, before the MCP layer. True when it
   * answered.
   */
  async function refuseAdmission(
    reply: FastifyReply,
    who: RequestIdentity,
    body: unknown,
  ): Promise<boolean> {
    const call = toolCallOf(body, EXECUTE_CODE)
    const refusal = call === undefined ? undefined : await engine.checkAdmission(who.principal)
    if (call === undefined || refusal === undefined || refusal.code === 'CANCELLED') return false
    reply
      .code(refusal.code === 'RATE_LIMITED' ? 429 : 503)
      .header('retry-after', String(Math.max(1, Math.ceil(refusal.retryAfterMs / 1000))))
      .header('content-type', 'application/json')
      .send(
        rpcError(RPC.SERVER_ERROR, `${refusal.code}: ${refusal.message}`, {
          id: call.id,
          data: { code: refusal.code, retryAfterMs: refusal.retryAfterMs },
        }),
      )
    return true
  }

  async function handleMcp(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const who = identities.get(req.raw)
    if (who === undefined)
      return void send(reply, 500, 'Internal error: unauthenticated request', RPC.INTERNAL_ERROR)
    const body = req.body
    if (Array.isArray(body)) {
      return void send(
        reply,
        400,
        'Invalid Request: JSON-RPC batches are not supported; send one message per request',
        RPC.INVALID_REQUEST,
      )
    }
    const sessionHeader = req.headers['mcp-session-id']
    if (Array.isArray(sessionHeader))
      return void send(reply, 400, 'Bad Request: more than one Mcp-Session-Id header')
    // 2026-07-28 requests carry their era in `_meta` and never a session id; the SDK's own
    // classifier decides, so routing cannot disagree with the modern handler.
    if (sessionHeader === undefined && req.method === 'POST') {
      const aborted = new AbortController()
      const request = webRequest(req, aborted.signal)
      if (!(await isLegacyRequest(request, body))) {
        if (await refuseAdmission(reply, who, body)) return
        const onClose = (): void => aborted.abort()
        reply.raw.once('close', onClose)
        reply.hijack()
        try {
          const res = await modern.fetch(request, { authInfo: authInfoOf(who), parsedBody: body })
          await writeWebResponse(res, reply.raw)
        } catch (err) {
          transportFailed(req, reply, err)
        } finally {
          reply.raw.off('close', onClose)
        }
        return
      }
    }

    let transport: StreamableHTTPServerTransport
    let fresh: Server | undefined
    const session = sessionHeader === undefined ? undefined : sessions.get(sessionHeader)
    if (sessionHeader !== undefined) {
      // An unknown id and another caller's id answer the same, so ids are no oracle (PRT-05).
      if (session === undefined || !samePrincipal(session.principal, who.principal)) {
        return void send(
          reply,
          404,
          'Session not found: initialize a new session',
          RPC.SESSION_NOT_FOUND,
        )
      }
      transport = session.transport
      // A resume that cannot be exact is refused here, in words, rather than replayed with a gap.
      const header = req.headers['last-event-id']
      const lastEventId = req.method === 'GET' && typeof header === 'string' ? header : undefined
      const refusal =
        lastEventId === undefined
          ? undefined
          : sessionEvents.get(transport)?.resumeRefusal(lastEventId)
      if (lastEventId !== undefined && refusal !== undefined) {
        return void send(
          reply,
          410,
          `Gone: cannot resume after Last-Event-ID ${JSON.stringify(lastEventId.slice(0, 200))}: ${refusal}; send the request again`,
        )
      }
    } else if (req.method === 'POST' && isInitializeRequest(body)) {
      if (sessions.isFull()) {
        return void send(
          reply,
          503,
          `Service Unavailable: too many sessions (limit ${sessions.maxSessions}); close one (DELETE /mcp) or retry later`,
        )
      }
      const opened = openSession(who)
      transport = opened.transport
      fresh = opened.server
      await fresh.connect(transport)
    } else {
      return void send(
        reply,
        400,
        'Bad Request: Mcp-Session-Id header is required (send initialize first)',
      )
    }

    if (req.method === 'POST' && (await refuseAdmission(reply, who, body))) return

    ;(req.raw as IncomingMessage & { auth?: AuthInfo }).auth = authInfoOf(who)
    reply.hijack()
    if (session !== undefined) sessions.begin(session)
    try {
      await transport.handleRequest(req.raw, reply.raw, body)
    } catch (err) {
      transportFailed(req, reply, err)
    } finally {
      if (session !== undefined) sessions.end(session)
      // A failed initialize leaves a transport with no session: release it now.
      if (fresh !== undefined && transport.sessionId === undefined) {
        await fresh.close().catch(() => undefined)
      }
    }
  }

  // MCP bodies are JSON only; without this, fastify's text/plain parser would hand strings on.
  app.removeContentTypeParser('text/plain')

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    if (pathOnly(req.url) !== MCP_PATH) return reply.send(err)
    switch (err.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return send(reply, 400, 'Parse error: the body is not valid JSON', RPC.PARSE_ERROR)
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return send(
          reply,
          413,
          `Payload Too Large: the body exceeds gateway.maxBodyBytes (${config.gateway.maxBodyBytes} bytes)`,
        )
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return send(reply, 415, 'Unsupported Media Type: send Content-Type: application/json')
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return send(reply, 400, 'Bad Request: Content-Length does not match the body')
      default:
        if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
          return send(reply, err.statusCode, `Bad Request: ${err.message}`)
        }
        req.log.error({ err }, 'request failed')
        return send(reply, 500, 'Internal error', RPC.INTERNAL_ERROR)
    }
  })

  app.route({
    method: ['GET', 'POST', 'DELETE'],
    url: MCP_PATH,
    onRequest: edgeChecks,
    handler: handleMcp,
  })
  app.route({
    method: ['PUT', 'PATCH'],
    url: MCP_PATH,
    handler: (_req, reply) => {
      reply.header('allow', 'GET, POST, DELETE')
      return send(reply, 405, 'Method Not Allowed: use POST, GET or DELETE')
    },
  })

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_req, reply) => {
    const health = engine.health()
    // Numbers only: `lastError` stays off this unauthenticated endpoint.
    const upstreams = Object.fromEntries(
      Object.entries(health.upstreams).map(([name, u]) => [
        name,
        {
          state: u.state,
          ...(u.restarts === undefined ? {} : { restarts: u.restarts }),
          ...(u.retryInMs === undefined ? {} : { retryInMs: u.retryInMs }),
        },
      ]),
    )
    const names = Object.keys(upstreams)
    const upCount = Object.values(health.upstreams).filter((u) => !DOWN_STATES.has(u.state)).length
    const allDown = names.length > 0 && upCount === 0
    const draining = health.executions.draining
    const ready = health.ready && !allDown && !draining
    const reason = draining
      ? 'shutting down: finishing running executions'
      : !health.ready
        ? 'the sandbox pool is not ready'
        : allDown
          ? 'every upstream is down'
          : undefined
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not ready',
      ...(reason === undefined ? {} : { reason }),
      upstreams,
      pool: health.pool,
      executions: health.executions,
      // What resumable streams hold against resumability.maxBytes (absent when it is off).
      ...(events === undefined
        ? {}
        : { resumability: { events: events.size, bytes: events.bytes } }),
      ...(deps.configHash === undefined ? {} : { config: deps.configHash() }),
    })
  })

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', METRICS_CONTENT_TYPE)
    return deps.metrics?.() ?? ''
  })

  const prm = async (req: FastifyRequest, reply: FastifyReply) => {
    if (identity === undefined) {
      return reply
        .code(404)
        .send({ error: 'not_found', message: 'no identity is configured (insecure dev mode)' })
    }
    return reply
      .header('cache-control', 'max-age=300')
      .send(resourceMetadata(identity, resourceUrl(req)))
  }
  app.get(PRM_PATH, prm)
  app.get(`${PRM_PATH}${MCP_PATH}`, prm)

  app.addHook('onClose', async () => {
    await Promise.all([sessions.closeAll(), modern.close()])
  })

  return app
}
