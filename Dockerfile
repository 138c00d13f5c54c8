# keptn-gitops-service: runs beside the Keptn distributor in the same pod.
# Node 24 (the same major the tests run on, via the `node` devDependency); git and openssh for the GitOps repos.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm install, not npm ci: npm 11 leaves other platforms' optional binaries out of the lock (see scripts/setup.sh).
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production GITOPS_WORK_DIR=/var/cache/keptn-gitops-service
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN mkdir -p /var/cache/keptn-gitops-service && chown node:node /var/cache/keptn-gitops-service
USER node
EXPOSE 8080
CMD ["node", "dist/src/main.js"]
