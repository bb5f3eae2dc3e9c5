/**
 * Edge checks of `/mcp` that run before any body is parsed or any token is verified: the Host
 * allowlist (DNS rebinding), the Origin check (browsers), and headers that must appear once.
 * Also the JSON-RPC error body every edge refusal uses.
 *
 * @module
 */

/** JSON-RPC error codes used at the edge. */
export const RPC = Object.freeze({
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  INTERNAL_ERROR: -32603,
  /** The SDK's "Bad Request"/server error code; used for edge refusals. */
  SERVER_ERROR: -32000,
  /** The SDK's code for an unknown session. */
  SESSION_NOT_FOUND: -32001,
})

export interface RpcErrorBody {
  jsonrpc: '2.0'
  error: { code: number; message: string; data?: Record<string, unknown> }
  id: null | string | number
}

export function rpcError(
  code: number,
  message: string,
  extra: { id?: string | number; data?: Record<string, unknown> } = {},
): RpcErrorBody {
  return {
    jsonrpc: '2.0',
    error: { code, message, ...(extra.data === undefined ? {} : { data: extra.data }) },
    id: extra.id ?? null,
  }
}

/** A single JSON-RPC `tools/call` of `name`: its id, else undefined. */
export function toolCallOf(body: unknown, name: string): { id: string | number } | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined
  const msg = body as { method?: unknown; id?: unknown; params?: { name?: unknown } }
  if (msg.method !== 'tools/call' || msg.params?.name !== name) return undefined
  return typeof msg.id === 'string' || typeof msg.id === 'number' ? { id: msg.id } : undefined
}

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]', '::1']

/** `example.com:8787` → `example.com`, `[::1]:8787` → `[::1]`; lowercased. */
export function hostnameOf(hostHeader: string): string {
  const host = hostHeader.trim().toLowerCase()
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    return end === -1 ? host : host.slice(0, end + 1)
  }
  const colon = host.indexOf(':')
  // More than one colon without brackets is a bare IPv6 address, which has no port.
  return colon !== -1 && host.indexOf(':', colon + 1) === -1 ? host.slice(0, colon) : host
}

function isLoopback(hostname: string): boolean {
  return LOOPBACK_HOSTS.includes(hostname)
}

export interface EdgePolicyOptions {
  /** `gateway.allowedHosts`: hostnames, or `host:port` to pin a port too. */
  allowedHosts: readonly string[]
  /** `gateway.allowedOrigins`: exact origins (`https://app.example.com`). */
  allowedOrigins: readonly string[]
  /** URLs whose hosts are this gateway's own (public URL, token audience, bound host). */
  ownUrls: readonly string[]
}

export interface EdgePolicy {
  /** Returns a refusal message, or undefined when the Host header is acceptable. */
  checkHost(host: string | undefined): string | undefined
  /** Returns a refusal message, or undefined when the Origin header is absent or acceptable. */
  checkOrigin(origin: string | undefined, host: string | undefined): string | undefined
}

function urlHost(url: string): string | undefined {
  try {
    return new URL(url).host.toLowerCase()
  } catch {
    return undefined
  }
}

/** Builds the Host/Origin policy once, at app construction. */
export function createEdgePolicy(options: EdgePolicyOptions): EdgePolicy {
  const exact = new Set<string>()
  const names = new Set<string>(LOOPBACK_HOSTS)
  for (const entry of options.allowedHosts) {
    const e = entry.trim().toLowerCase()
    if (e === hostnameOf(e)) names.add(e)
    else exact.add(e)
  }
  for (const url of options.ownUrls) {
    const host = urlHost(url)
    if (host === undefined) continue
    const name = hostnameOf(host)
    // A wildcard bind address is no name a browser would use; it must not widen the list.
    if (name !== '0.0.0.0' && name !== '[::]' && name !== '::') names.add(name)
  }
  const origins = new Set(
    options.allowedOrigins.map((o) => o.trim().toLowerCase().replace(/\/$/, '')),
  )

  return {
    checkHost(host) {
      if (host === undefined || host === '') return 'Forbidden: the Host header is missing'
      const h = host.trim().toLowerCase()
      if (exact.has(h) || names.has(hostnameOf(h))) return undefined
      return 'Forbidden: Host header not allowed (add it to gateway.allowedHosts if it is a name of this gateway)'
    },
    checkOrigin(origin, host) {
      if (origin === undefined) return undefined
      const o = origin.trim().toLowerCase()
      if (origins.has(o)) return undefined
      const originHost = urlHost(o)
      // Same origin on loopback: a local client page served by the gateway's own host:port.
      if (
        originHost !== undefined &&
        host !== undefined &&
        originHost === host.trim().toLowerCase()
      ) {
        if (isLoopback(hostnameOf(originHost))) return undefined
      }
      return 'Forbidden: Origin not allowed (add it to gateway.allowedOrigins)'
    },
  }
}

/** How many times a header appears in Node's `rawHeaders` (Node keeps only the first value). */
export function headerCount(rawHeaders: readonly string[], name: string): number {
  let count = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === name) count++
  }
  return count
}
