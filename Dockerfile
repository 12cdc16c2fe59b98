# syntax=docker/dockerfile:1
#
# Punctual's image: one image, every role. The role is the CMD argument:
#   docker run … punctual api | worker | relay | migrate
# The embedded mode (`all` without DATABASE_URL / TEMPORAL_ADDRESS) is for laptops, not
# containers: give a container a real PostgreSQL and a real Temporal server.
#
# Node 20 because that is what the project targets (package.json engines, undici 7); pin a
# digest (node:…@sha256:…) as well when you need byte-for-byte reproducible builds.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---------------------------------------------------------------------------------------------
# build: compile TypeScript, pre-bundle the workflow code, then drop dev dependencies.
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# Dependencies first, so editing sources does not invalidate the npm ci layer.
COPY package.json package-lock.json ./
# The workspace package (clients/typescript) must be there for npm ci to link it.
COPY clients/typescript/package.json clients/typescript/
RUN npm ci --no-audit --no-fund

COPY . .
# Tests are compiled with everything else (tsconfig includes test/); the image does not need them.
RUN npm run build && rm -rf dist/test

# Without a ready bundle the worker runs webpack over workflows/ on every start. This one is
# what WORKFLOW_BUNDLE_PATH points at in the runtime stage.
RUN node -e "require('@temporalio/worker').bundleWorkflowCode({ workflowsPath: require.resolve('./dist/workflows') }).then((b) => require('node:fs').writeFileSync('dist/workflow-bundle.js', b.code))"

RUN npm prune --omit=dev --no-audit --no-fund

# ---------------------------------------------------------------------------------------------
# runtime: production node_modules, compiled code and SQL migrations; runs as `node`, not root.
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/app/.data \
    WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js
WORKDIR /app

COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# core/db.ts resolves migrations at <project>/drizzle/migrations, i.e. ../../drizzle/migrations
# from dist/core/db.js.
COPY --from=build /app/drizzle/migrations ./drizzle/migrations

# Every role creates DATA_DIR at start (it only holds data in the embedded mode): it must be
# writable by the unprivileged user.
RUN mkdir -p /app/.data && chown node:node /app/.data

USER node
EXPOSE 3000

# The process handles SIGTERM itself (API first, then relay and worker), so exec form, no shell.
ENTRYPOINT ["node", "dist/bin/punctual.js"]
CMD ["api"]
