/**
 * One registry entry → one config entry, including what a hostile or careless registry sends:
 * `${...}` that the config loader would expand from sluice's own environment, shell
 * metacharacters, secrets in arguments or URLs, a version that is not pinned. And the client's
 * limits at N and N+1 (pages, response bytes).
 */
import { describe, expect, it } from 'vitest'
import {
  importEntry,
  MAX_REGISTRY_PAGES,
  MAX_REGISTRY_RESPONSE_BYTES,
  RegistryClient,
  serverDetailSchema,
  type RegistryEntry,
} from '../../src/registry/index.js'

const REGISTRY = 'https://registry.example.com'

function entry(server: Record<string, unknown>): RegistryEntry {
  return {
    server: serverDetailSchema.parse({
      name: 'io.github.acme/tool',
      description: 'A tool',
      version: '1.0.0',
      ...server,
    }),
    status: 'active',
  }
}

const npm = (extra: Record<string, unknown> = {}) => ({
  registryType: 'npm',
  identifier: '@acme/tool',
  version: '1.0.0',
  transport: { type: 'stdio' },
  ...extra,
})

const refusal = (
  e: RegistryEntry,
  options: Parameters<typeof importEntry>[1] = { registry: REGISTRY },
): string => {
  try {
    importEntry(e, options)
  } catch (cause) {
    expect((cause as { code?: string }).code).toBe('REGISTRY_INVALID')
    return (cause as Error).message
  }
  throw new Error('expected a refusal')
}

describe('importEntry maps', () => {
  it('pypi to uvx pinned with ==, and oci to docker with the secret variables passed by name', () => {
    const py = importEntry(
      entry({ packages: [{ ...npm(), registryType: 'pypi', identifier: 'acme-tool' }] }),
      { registry: REGISTRY },
    )
    expect(py.entry).toMatchObject({ command: 'uvx', args: ['acme-tool==1.0.0'] })
    const oci = importEntry(
      entry({
        packages: [
          {
            ...npm(),
            registryType: 'oci',
            identifier: 'ghcr.io/acme/tool',
            environmentVariables: [
              { name: 'TOKEN', isSecret: true },
              { name: 'MODE', default: 'ro' },
            ],
          },
        ],
      }),
      { registry: REGISTRY, secrets: { TOKEN: 'file:/run/secrets/token' } },
    )
    expect(oci.entry).toMatchObject({
      command: 'docker',
      args: ['run', '-i', '--rm', '-e', 'MODE', '-e', 'TOKEN', 'ghcr.io/acme/tool:1.0.0'],
      env: { MODE: 'ro' },
      credentials: { grant: 'env', env: { TOKEN: 'file:/run/secrets/token' } },
    })
  })

  it('a "Bearer {token}" header with a secret variable to a static grant with its prefix', () => {
    const out = importEntry(
      entry({
        remotes: [
          {
            type: 'sse',
            url: 'https://{tenant}.example.com/sse',
            variables: { tenant: { default: 'acme' } },
            headers: [
              {
                name: 'Authorization',
                value: 'Bearer {token}',
                variables: { token: { isSecret: true } },
              },
              { name: 'X-Client', value: 'sluice' },
            ],
          },
        ],
      }),
      { registry: REGISTRY },
    )
    expect(out.entry).toEqual({
      type: 'sse',
      url: 'https://acme.example.com/sse',
      headers: { 'X-Client': 'sluice' },
      credentials: {
        grant: 'static',
        header: 'Authorization',
        valueFrom: 'env:AUTHORIZATION',
        prefix: 'Bearer ',
      },
      description: 'A tool',
      origin: { registry: REGISTRY, name: 'io.github.acme/tool', version: '1.0.0' },
    })
  })

  it('shell metacharacters in an argument to one argv element, verbatim (no shell ever runs it)', () => {
    const out = importEntry(
      entry({
        packages: [npm({ packageArguments: [{ type: 'positional', value: '; rm -rf ~ #' }] })],
      }),
      { registry: REGISTRY },
    )
    expect(out.entry.args).toEqual(['-y', '@acme/tool@1.0.0', '; rm -rf ~ #'])
  })

  it('a package that cannot run to the remote of the same entry', () => {
    const out = importEntry(
      entry({
        packages: [
          npm({ transport: { type: 'streamable-http', url: 'http://localhost:3000/mcp' } }),
        ],
        remotes: [{ type: 'streamable-http', url: 'https://tool.example.com/mcp' }],
      }),
      { registry: REGISTRY },
    )
    expect(out.entry).toMatchObject({ type: 'http', url: 'https://tool.example.com/mcp' })
  })
})

describe('importEntry refuses', () => {
  it('${...} from the registry anywhere the config loader would expand it', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [
        {
          packages: [
            npm({
              packageArguments: [{ type: 'positional', value: '--token=${AWS_SECRET_ACCESS_KEY}' }],
            }),
          ],
        },
        'the value of an argument contains "${"',
      ],
      [
        { packages: [npm({ environmentVariables: [{ name: 'HOME_COPY', default: '${HOME}' }] })] },
        'the default of HOME_COPY contains "${"',
      ],
      [{ packages: [npm({ identifier: '${NPM_TOKEN}' })] }, 'the package identifier contains "${"'],
      [
        { remotes: [{ type: 'streamable-http', url: 'https://x.example.com/${TOKEN}' }] },
        'the URL contains "${"',
      ],
    ]
    for (const [server, text] of cases) {
      expect(refusal(entry(server))).toContain(
        `${text}, which sluice would expand from its own environment; refused`,
      )
    }
  })

  it('a secret argument, a secret URL variable and two secret headers', () => {
    expect(
      refusal(
        entry({
          packages: [
            npm({ packageArguments: [{ type: 'named', name: '--api-key', isSecret: true }] }),
          ],
        }),
      ),
    ).toContain(
      'argument --api-key is secret, and arguments are visible to every process and pinned in the lock',
    )
    expect(
      refusal(
        entry({
          remotes: [
            {
              type: 'streamable-http',
              url: 'https://{key}.example.com/mcp',
              variables: { key: { isSecret: true } },
            },
          ],
        }),
      ),
    ).toContain('URL template variable {key} is secret')
    expect(
      refusal(
        entry({
          remotes: [
            {
              type: 'streamable-http',
              url: 'https://x.example.com/mcp',
              headers: [
                { name: 'X-A', isSecret: true },
                { name: 'X-B', isSecret: true },
              ],
            },
          ],
        }),
      ),
    ).toContain('headers X-A and X-B are both secret: sluice grants one secret header per server')
  })

  it('a package without a version, and says why for each package and remote it tried', () => {
    const message = refusal(
      entry({
        packages: [
          npm({ version: undefined }),
          { ...npm(), registryType: 'nuget', identifier: 'Acme.Tool' },
        ],
      }),
    )
    expect(message).toBe(
      'registry entry io.github.acme/tool@1.0.0 cannot be imported: packages[0] (npm @acme/tool): it has no version: sluice runs npm packages pinned to an exact version; packages[1] (nuget Acme.Tool): registry type nuget cannot run here: sluice starts npm, pypi, oci packages (npx, uvx, docker)',
    )
  })

  it('a name whose last segment is no server name', () => {
    expect(refusal(entry({ name: 'io.github.acme/9lives', packages: [npm()] }))).toContain(
      'registry entry io.github.acme/9lives@1.0.0 cannot be imported: its last segment does not make a server name',
    )
  })
})

describe('server.json schema', () => {
  it('takes a 100-character description and refuses 101, and refuses version ranges', () => {
    const base = { name: 'io.github.acme/tool', version: '1.0.0' }
    expect(serverDetailSchema.safeParse({ ...base, description: 'x'.repeat(100) }).success).toBe(
      true,
    )
    expect(serverDetailSchema.safeParse({ ...base, description: 'x'.repeat(101) }).success).toBe(
      false,
    )
    for (const version of ['^1.2.3', '~1.2.3', '>=1.2.3', '1.x', '1.*'])
      expect(
        serverDetailSchema.safeParse({ ...base, description: 'd', version }).success,
        version,
      ).toBe(false)
    expect(
      serverDetailSchema.safeParse({ ...base, description: 'd', name: 'no-slash' }).success,
    ).toBe(false)
  })
})

/** A registry answering list pages from `page(n)`; counts requests. */
function fakeRegistry(page: (n: number) => unknown): {
  fetch: typeof fetch
  requests: () => number
} {
  let n = 0
  return {
    requests: () => n,
    fetch: (async () => {
      const body = JSON.stringify(page(n++))
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } })
    }) as typeof fetch,
  }
}

describe('RegistryClient limits', () => {
  const one = (i: number) => ({
    server: { name: `io.github.acme/t${i}`, description: 'd', version: '1.0.0' },
  })

  it(`reads ${MAX_REGISTRY_PAGES} pages, and refuses a list that goes on past them`, async () => {
    const ending = fakeRegistry((n) => ({
      servers: [one(n)],
      metadata: n + 1 < MAX_REGISTRY_PAGES ? { nextCursor: `c${n}` } : {},
    }))
    const all = await new RegistryClient(REGISTRY, {
      timeoutMs: 1000,
      fetch: ending.fetch,
    }).latestAll()
    expect(all).toHaveLength(MAX_REGISTRY_PAGES)
    const endless = fakeRegistry((n) => ({ servers: [one(n)], metadata: { nextCursor: `c${n}` } }))
    await expect(
      new RegistryClient(REGISTRY, { timeoutMs: 1000, fetch: endless.fetch }).latestAll(),
    ).rejects.toMatchObject({
      code: 'REGISTRY_UNAVAILABLE',
      message: `registry ${REGISTRY}: the list did not end within ${MAX_REGISTRY_PAGES} pages`,
    })
    expect(endless.requests()).toBe(MAX_REGISTRY_PAGES)
  })

  it('refuses a cursor that comes back', async () => {
    const loop = fakeRegistry(() => ({ servers: [], metadata: { nextCursor: 'same' } }))
    await expect(
      new RegistryClient(REGISTRY, { timeoutMs: 1000, fetch: loop.fetch }).latestAll(),
    ).rejects.toMatchObject({
      message: `registry ${REGISTRY}: the list repeats cursor "same"; stopped after 2 pages`,
    })
  })

  it(`reads a response of ${MAX_REGISTRY_RESPONSE_BYTES} bytes and refuses one byte more`, async () => {
    const sized = (bytes: number): typeof fetch =>
      (async () => {
        const head = '{"servers":[],"pad":"'
        const body = `${head}${'x'.repeat(bytes - head.length - 2)}"}`
        return new Response(body, { status: 200 })
      }) as typeof fetch
    await expect(
      new RegistryClient(REGISTRY, {
        timeoutMs: 5000,
        fetch: sized(MAX_REGISTRY_RESPONSE_BYTES),
      }).latestAll(),
    ).resolves.toEqual([])
    await expect(
      new RegistryClient(REGISTRY, {
        timeoutMs: 5000,
        fetch: sized(MAX_REGISTRY_RESPONSE_BYTES + 1),
      }).latestAll(),
    ).rejects.toMatchObject({
      code: 'REGISTRY_UNAVAILABLE',
      message: `registry ${REGISTRY}/v0.1/servers: the answer is larger than ${MAX_REGISTRY_RESPONSE_BYTES} bytes`,
    })
  })

  it('refuses an answer for another name than the one asked', async () => {
    const liar = (async () =>
      new Response(
        JSON.stringify({
          servers: [
            { server: { name: 'io.github.evil/tool', description: 'd', version: '6.6.6' } },
          ],
        }),
        { status: 200 },
      )) as typeof fetch
    await expect(
      new RegistryClient(REGISTRY, { timeoutMs: 1000, fetch: liar }).latest('io.github.acme/tool'),
    ).rejects.toMatchObject({
      code: 'REGISTRY_INVALID',
      message: `registry ${REGISTRY}: asked for io.github.acme/tool, it answered with io.github.evil/tool@6.6.6; refused`,
    })
  })

  it('names the timeout when the registry does not answer in time', async () => {
    const slow = (async (_url: string, init?: RequestInit) =>
      new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal!.reason as Error))
      })) as typeof fetch
    await expect(
      new RegistryClient(REGISTRY, { timeoutMs: 50, fetch: slow }).latestAll(),
    ).rejects.toMatchObject({
      code: 'REGISTRY_UNAVAILABLE',
      message: `registry ${REGISTRY}/v0.1/servers: no answer within 50 ms`,
    })
  })
})
