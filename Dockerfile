# syntax=docker/dockerfile:1
# The sluice gateway image: built in one stage, run from another with production dependencies
# only, as a non-root numeric user, with nothing to write inside the image (run it with a
# read-only root filesystem; the audit goes to a volume). deploy/kubernetes runs it that way;
# `npm run check:deploy` checks these rules on this file.
#
#   docker build -t sluice .
#   docker run --read-only --tmpfs /tmp -p 8787:8787 \
#     -v "$PWD/deploy/kubernetes/config:/etc/sluice:ro" \
#     -v "$PWD/jwks.json:/var/run/sluice/identity/jwks.json:ro" \
#     -v sluice-audit:/var/lib/sluice sluice
#
# The base is Node 22 LTS, pinned by version and digest; bump both together.

FROM node:22.23.3-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY runtime ./runtime
RUN npm run build

# Production dependencies alone, from the lock file. No install script of them is needed to run.
FROM node:22.23.3-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:22.23.3-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c AS runtime
# The gateway never runs npm, npx, corepack or yarn: removing them removes their dependency
# trees (and whatever CVEs those carry) from the image. The audit folder belongs to the
# gateway's user so that a fresh Docker volume mounted there takes that owner.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx \
    /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
  && mkdir -p /var/lib/sluice && chown 1000:1000 /var/lib/sluice
ENV NODE_ENV=production
WORKDIR /app
# What `sluice serve` reads at run time: the compiled code, the guest prelude (runtime/, read
# as source), package.json (the version) and the production node_modules (QuickJS's wasm among
# them). Owned by root: the gateway's user can read them, not change them.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY runtime ./runtime
COPY package.json ./
# The image's `node` user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8787/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/src/main.js"]
CMD ["serve", "--config", "/etc/sluice/sluice.yaml", "--host", "0.0.0.0", "--port", "8787"]
