# sluice gateway image. Build: docker build -t sluice .  Run: docker run -p 8787:8787 -v $PWD/sluice.yaml:/etc/sluice/sluice.yaml sluice
# Node 22 LTS in the image (the code runs on Node >= 20.19).
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY runtime ./runtime
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY runtime ./runtime
COPY policies ./policies
# No secrets baked in: grants read env: or file: references at run time.
USER node
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8787/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["serve", "--config", "/etc/sluice/sluice.yaml", "--host", "0.0.0.0", "--port", "8787"]
