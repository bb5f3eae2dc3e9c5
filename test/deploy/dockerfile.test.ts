/**
 * The Dockerfile's hardening rules, on its parsed form: the repository's Dockerfile and
 * .dockerignore pass, and a Dockerfile that breaks one rule gets exactly that rule's message.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkDockerfile, ignored, imageOf } from '../../scripts/deploy/dockerfile.js'
import { ROOT } from '../helpers/runtime.js'

const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
const DOCKERIGNORE = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
const BASE = /node:22\.23\.3-bookworm-slim@sha256:[0-9a-f]{64}/

/** `Dockerfile:N` of the nth line (from 1) of `text` that contains `needle`. */
function at(text: string, needle: string, nth = 1): string {
  const lines = text.split('\n')
  let seen = 0
  const index = lines.findIndex((l) => l.includes(needle) && ++seen === nth)
  if (index === -1) throw new Error(`no line ${nth} with ${needle}`)
  return `Dockerfile:${index + 1}`
}

/** Replaces the one occurrence of `from` (several would make the case ambiguous). */
function edit(from: string | RegExp, to: string, text = DOCKERFILE): string {
  const count = text.split(from).length - 1
  if (count !== 1) throw new Error(`${String(from)} occurs ${count} times`)
  return text.replace(from, to)
}

const runtimeFrom = (text: string) => text.slice(text.lastIndexOf('FROM '))

describe('the repository Dockerfile', () => {
  it('keeps every rule, with its .dockerignore', () => {
    expect(checkDockerfile(DOCKERFILE, DOCKERIGNORE)).toEqual([])
  })

  it('starts the gateway with exec-form ENTRYPOINT and CMD as a non-root user', () => {
    expect(imageOf(DOCKERFILE)).toMatchObject({
      entrypoint: ['node', '/app/dist/src/main.js'],
      cmd: ['serve', '--config', '/etc/sluice/sluice.yaml', '--host', '0.0.0.0', '--port', '8787'],
      workdir: '/app',
      user: '1000:1000',
      env: { NODE_ENV: 'production' },
    })
  })
})

describe('a Dockerfile that breaks a rule', () => {
  const lastFrom = DOCKERFILE.lastIndexOf('FROM ')
  const withInstall = edit(
    'COPY package.json ./\n',
    'COPY package.json ./\nRUN npm install left-pad\n',
  )
  const cases: Array<{ rule: string; text: string; dockerignore?: string; expected: string[] }> = [
    {
      rule: 'one stage only',
      text: runtimeFrom(DOCKERFILE),
      expected: [
        'Dockerfile: multi-stage build expected: 1 FROM found (build in one stage, run from another)',
      ],
    },
    {
      rule: 'a floating tag',
      text: DOCKERFILE.replace('node:22.23.3-bookworm-slim@', 'node:22-bookworm-slim@'),
      expected: [
        `${at(DOCKERFILE, 'AS build')}: FROM node:22-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c: pin the base image to an exact version tag and a digest (name:1.2.3-variant@sha256:<64 hex>)`,
      ],
    },
    {
      rule: 'no digest',
      text:
        DOCKERFILE.slice(0, lastFrom) + runtimeFrom(DOCKERFILE).replace(/@sha256:[0-9a-f]{64}/, ''),
      expected: [
        `${at(DOCKERFILE, 'AS runtime')}: FROM node:22.23.3-bookworm-slim: pin the base image to an exact version tag and a digest (name:1.2.3-variant@sha256:<64 hex>)`,
      ],
    },
    {
      rule: 'a runtime base other than Node 22',
      text:
        DOCKERFILE.slice(0, lastFrom) +
        runtimeFrom(DOCKERFILE).replace(
          BASE,
          `node:20.19.5-bookworm-slim@sha256:${'a'.repeat(64)}`,
        ),
      expected: [
        `${at(DOCKERFILE, 'AS runtime')}: FROM node:20.19.5-bookworm-slim@sha256:${'a'.repeat(64)}: the runtime stage must be Node 22 LTS, slim or distroless`,
      ],
    },
    {
      rule: 'no USER',
      text: edit('USER 1000:1000\n', ''),
      expected: ['Dockerfile: runtime stage: no USER: the container would run as root'],
    },
    {
      rule: 'a USER by name',
      text: edit('USER 1000:1000', 'USER node'),
      expected: [
        `${at(DOCKERFILE, 'USER 1000')}: USER node: use a numeric UID (e.g. 1000:1000) so that Kubernetes' runAsNonRoot can verify it`,
      ],
    },
    {
      rule: 'USER root by number',
      text: edit('USER 1000:1000', 'USER 0:0'),
      expected: [`${at(DOCKERFILE, 'USER 1000')}: USER 0:0: runs as root`],
    },
    {
      rule: 'no HEALTHCHECK',
      text: edit(/HEALTHCHECK [^\n]*\\\n[^\n]*\n/, ''),
      expected: ['Dockerfile: runtime stage: no HEALTHCHECK'],
    },
    {
      rule: 'HEALTHCHECK NONE',
      text: edit(/HEALTHCHECK [^\n]*\\\n[^\n]*\n/, 'HEALTHCHECK NONE\n'),
      expected: [`${at(DOCKERFILE, 'HEALTHCHECK')}: HEALTHCHECK NONE disables the health check`],
    },
    {
      rule: 'a HEALTHCHECK on another port than CMD serves',
      text: edit('"--port", "8787"', '"--port", "9000"'),
      expected: [
        `${at(DOCKERFILE, 'HEALTHCHECK')}: HEALTHCHECK does not probe http://127.0.0.1:9000/healthz (the port CMD serves on)`,
      ],
    },
    {
      rule: 'ENTRYPOINT in shell form',
      text: edit(
        'ENTRYPOINT ["node", "/app/dist/src/main.js"]',
        'ENTRYPOINT node /app/dist/src/main.js',
      ),
      expected: [
        `${at(DOCKERFILE, 'ENTRYPOINT')}: ENTRYPOINT in shell form: use the exec form (a JSON array) so the gateway is PID 1 and receives SIGTERM`,
      ],
    },
    {
      rule: 'no CMD',
      text: edit(/\nCMD \[[^\n]*/, ''),
      expected: ['Dockerfile: runtime stage: no CMD'],
    },
    {
      rule: 'node_modules from a stage with dev dependencies',
      text: edit('npm ci --omit=dev --ignore-scripts', 'npm ci --ignore-scripts'),
      expected: [
        `${at(DOCKERFILE, 'COPY --from=deps')}: node_modules comes from stage deps, which keeps dev dependencies (no npm ci --omit=dev or npm prune --omit=dev)`,
      ],
    },
    {
      rule: 'node_modules from the build context',
      text: edit(
        'COPY --from=deps /app/node_modules ./node_modules',
        'COPY node_modules ./node_modules',
      ),
      expected: [
        `${at(DOCKERFILE, 'COPY --from=deps')}: node_modules copied from the build context: install production dependencies in a stage instead`,
      ],
    },
    {
      rule: 'an npm install in the runtime stage',
      text: withInstall,
      expected: [
        `${at(withInstall, 'RUN npm install left-pad')}: the runtime stage installs dev dependencies: add --omit=dev`,
      ],
    },
    {
      rule: 'no NODE_ENV=production',
      text: edit('ENV NODE_ENV=production\n', ''),
      expected: ['Dockerfile: runtime stage: ENV NODE_ENV=production is missing'],
    },
    {
      rule: 'a COPY the .dockerignore keeps out',
      text: DOCKERFILE,
      dockerignore: DOCKERIGNORE.replace('!runtime\n', ''),
      expected: [
        `${at(DOCKERFILE, 'COPY runtime ./runtime')}: COPY runtime: .dockerignore keeps it out of the build context`,
        `${at(DOCKERFILE, 'COPY runtime ./runtime', 2)}: COPY runtime: .dockerignore keeps it out of the build context`,
      ],
    },
    {
      rule: 'a .dockerignore that lets dev keys in',
      text: DOCKERFILE,
      dockerignore: 'node_modules\n.git\n',
      expected: ['.dockerignore: .sluice must be kept out of the build context'],
    },
  ]

  it.each(cases)('$rule', ({ text, dockerignore, expected }) => {
    expect(checkDockerfile(text, dockerignore)).toEqual(expected)
  })

  it('accepts node_modules pruned to production dependencies in the build stage', () => {
    const text = edit(
      'RUN npm run build\n',
      'RUN npm run build\nRUN npm prune --omit=dev\n',
    ).replace('COPY --from=deps /app/node_modules', 'COPY --from=build /app/node_modules')
    expect(checkDockerfile(text, DOCKERIGNORE)).toEqual([])
  })
})

describe('.dockerignore matching', () => {
  it('lets the last matching line decide, for a path and everything under it', () => {
    const list = '*\n!src\nsrc/secret.ts\n'
    expect(
      ['src/a.ts', 'src/secret.ts', 'dist/x.js', '.sluice/dev-issuer/key.json'].map((p) =>
        ignored(list, p),
      ),
    ).toEqual([false, true, true, true])
  })
})
