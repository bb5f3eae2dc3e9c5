/**
 * `sluice token`: mints a development token from the local dev issuer (never for production).
 *
 * @module
 */
import { resolve } from 'node:path'
import { createDevIssuer, DEFAULT_DEV_ISSUER } from '../auth/index.js'
import { usage, type Command } from './index.js'

export const tokenCommand: Command = {
  name: 'token',
  summary: 'Mint a development JWT from the local dev issuer (creates its keys on first use)',
  usage:
    'sluice token [--dir DIR] [--sub SUB] [--scope "a b"] [--tenant T] [--aud URI] [--iss URI] [--ttl SECONDS] [--init]',
  description:
    'Prints a short-lived ES256 access token signed by the dev issuer whose keys live in --dir (default .sluice/dev-issuer, relative to the current folder: run it from the project root, where the demo config looks for them). iss is https://sluice.invalid/dev-issuer, a name that never resolves: the dev issuer is no login server, so pass the token as a bearer header. Never for production.',
  examples: ['TOKEN=$(sluice token --sub alice --scope "memory:write")', 'sluice token --init'],
  options: {
    dir: { type: 'string', default: '.sluice/dev-issuer' },
    sub: { type: 'string', default: 'dev-user' },
    scope: { type: 'string', default: '' },
    tenant: { type: 'string' },
    aud: { type: 'string', default: 'http://127.0.0.1:8787/mcp' },
    iss: { type: 'string', default: DEFAULT_DEV_ISSUER },
    ttl: { type: 'string', default: '3600' },
    init: { type: 'boolean' },
  },
  async run({ values }) {
    const ttlSeconds = Number(values.ttl)
    if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > 86_400) {
      throw usage(`--ttl: expected whole seconds between 1 and 86400, got ${String(values.ttl)}`)
    }
    const issuer = await createDevIssuer({ dir: resolve(values.dir as string) })
    if (values.init) {
      process.stderr.write(`dev issuer keys ready in ${resolve(values.dir as string)}\n`)
      return 0
    }
    const token = await issuer.mint({
      sub: values.sub as string,
      aud: values.aud as string,
      iss: values.iss as string,
      scopes: (values.scope as string).split(/\s+/).filter(Boolean),
      ...(values.tenant ? { tenant: values.tenant as string } : {}),
      ttlSeconds,
    })
    process.stdout.write(`${token}\n`)
    return 0
  },
}
