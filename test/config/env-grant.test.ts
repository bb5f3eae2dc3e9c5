/**
 * The `env` grant (what a registry entry's secret environment variables become): the stdio
 * server gets the secret in its environment when it starts, the value is read from `file:` or
 * `env:` (never the config), registered with the redactor, and refused on a url server.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { SERVERS, testRuntime } from '../helpers/runtime.js'

describe('credentials: { grant: env }', () => {
  it('puts the secret in the started server environment, and redacts it on the way back', async () => {
    const secret = 'canary-env-grant-4f1c'
    const rt = await testRuntime({
      config: {
        servers: {
          rec: {
            command: process.execPath,
            args: [SERVERS.recording],
            // Relative to the config folder, which testRuntime creates: written below.
            credentials: { grant: 'env', env: { FIXTURE_SECRET: 'file:secret.txt' } },
          },
        },
      },
      before: (dir: string) => writeFileSync(join(dir, 'secret.txt'), `${secret}\n`),
    })
    try {
      const out = await rt.engine.execute(rt.principal(), 'return await tools.rec.echo_env({})')
      // Redacted: the server saw exactly the secret (an unset variable reads "unset").
      expect(out).toMatchObject({ ok: true, result: 'the secret is [REDACTED]' })
      expect(JSON.stringify(rt.config)).not.toContain(secret)
    } finally {
      await rt.close()
    }
  })

  it('names the variable when its secret is not set, and the server does not start', async () => {
    delete process.env.SLUICE_TEST_UNSET_SECRET
    const rt = await testRuntime({
      config: {
        servers: {
          rec: {
            command: process.execPath,
            args: [SERVERS.recording],
            credentials: { grant: 'env', env: { FIXTURE_SECRET: 'env:SLUICE_TEST_UNSET_SECRET' } },
          },
        },
      },
    })
    try {
      const health = rt.engine.health().upstreams.rec
      expect(health?.tools).toBe(0)
      expect(health?.lastError).toContain(
        'secret env:SLUICE_TEST_UNSET_SECRET: environment variable SLUICE_TEST_UNSET_SECRET is not set',
      )
    } finally {
      await rt.close()
    }
  })

  it('is refused on a url server, with the path', () => {
    expect(() =>
      parseConfig(
        {
          servers: {
            w: {
              url: 'http://127.0.0.1:1/mcp',
              credentials: { grant: 'env', env: { A: 'env:A' } },
            },
          },
        },
        '/x/sluice.yaml',
        '/x',
      ),
    ).toThrow(
      'invalid config /x/sluice.yaml: servers.w.credentials.grant: "env" sets environment variables of a server sluice starts; a url server gets a header grant (static, token-exchange, jwt)',
    )
  })
})
