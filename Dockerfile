# syntax=docker/dockerfile:1
# Tether worker image: `node dist/main.js`, one worker per container; scale with replicas.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: full dependencies, compile TypeScript to dist/ ----------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# The workspaces' manifests first: npm ci links @tether/protocol and @tether/client from them.
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/client/package.json packages/client/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY packages ./packages
COPY src ./src
# npm run build = the two packages (protocol, then the client and its standalone bundle), then tsc
# + scripts/copy-assets.mjs (Lua scripts and the demo page into dist/).
COPY scripts ./scripts
RUN npm run build

# ---- prod-deps: production dependencies only ------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/
COPY packages/client/package.json packages/client/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
# Code stays root-owned and read-only to the app user; nothing is written under /app, so the
# image also runs with a read-only root filesystem (the Helm chart sets one).
COPY --from=prod-deps /app/node_modules ./node_modules
# node_modules/@tether/protocol is a workspace link to packages/protocol: the server imports the
# wire contract from it at run time.
COPY --from=build /app/packages/protocol/package.json ./packages/protocol/package.json
COPY --from=build /app/packages/protocol/dist ./packages/protocol/dist
COPY --from=build /app/dist ./dist
COPY package.json ./
# Numeric uid:gid of the image's `node` user: Kubernetes' runAsNonRoot can only verify a number.
USER 1000:1000
EXPOSE 3000
# SIGTERM starts the graceful drain (readyz 503, server:shutdown, batched disconnects).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/main.js"]
