# keptn-gitops-service: runs beside the Keptn distributor in the same pod (chart/).
#   docker build -t keptn-gitops-service:dev --build-arg VERSION=$(git describe --tags --always) .
# Node 24, the major the tests run on (package.json's `node` devDependency); git and openssh for the GitOps repos.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm install, not npm ci: npm 11 leaves other platforms' optional binaries out of the lock (see scripts/setup.sh).
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
# tini as PID 1: git and ssh children whose parent is gone are reaped instead of left as zombies, and SIGTERM reaches
# node. Nothing else of the base image's tooling is needed at run time: npm, corepack and yarn go, and so do Node's C
# headers (only a compiler reads them). `apt-get clean` as well as the lists: the downloaded .deb files stay otherwise
# on a base without Debian's docker-clean hook (about 90 MB here).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates tini \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* /usr/local/etc/npmrc \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
           /usr/local/include/node /usr/local/share/doc/node /usr/local/share/man/man1/node.1
WORKDIR /app
# Node sizes V8's heap from the container's memory limit by itself (src/api/environment.cc, uv_get_constrained_memory).
# glibc keeps up to 8 malloc arenas per core and returns little of them: two arenas, and freed memory above 128 KiB
# given back, took the service's resident memory at rest from 153 to 118 MB here (docs/benchmarks.md, issue 22).
ENV NODE_ENV=production GITOPS_WORK_DIR=/var/cache/keptn-gitops-service MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
# uid/gid 1000 is the base image's `node` user. Numeric, so the kubelet can verify runAsNonRoot (a named user makes
# it refuse the container); the chart sets the same numbers.
RUN mkdir -p /var/cache/keptn-gitops-service && chown 1000:1000 /var/cache/keptn-gitops-service
USER 1000:1000
# Events from the distributor (127.0.0.1 only) and the probe port.
EXPOSE 8080 8082
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/main.js"]

ARG NODE_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="keptn-gitops-service" \
      org.opencontainers.image.description="Keptn v1 deployment service that delivers through Flux or Argo CD" \
      org.opencontainers.image.source="https://github.com/keptn-sandbox/keptn-gitops-service" \
      org.opencontainers.image.url="https://github.com/keptn-sandbox/keptn-gitops-service" \
      org.opencontainers.image.documentation="https://github.com/keptn-sandbox/keptn-gitops-service#readme" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="keptn-sandbox" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/${NODE_IMAGE}"
