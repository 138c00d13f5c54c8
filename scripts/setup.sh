#!/usr/bin/env bash
# Everything the service's demo and tests need on a fresh machine, and nothing more on a warm one:
# Debian packages, npm packages (Node 24 comes with them), and the real peers built from their upstream Go modules
# into a cache outside the repository (test/env/peers/build.sh). Cold: tens of minutes (Go builds); warm: seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "setup: $*" >&2; }

need=()
# buildah and mmdebstrap: the image's build in CI (test/env/image/build.sh), on a stand-in for node's base image.
for pkg in git openssl openssh-client openssh-server nats-server redis-server util-linux shellcheck buildah mmdebstrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then say "need root (or sudo) for apt-get"; exit 1; fi
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

stamp=node_modules/.setup-lock-sha
lock_sha=$(cat package.json package-lock.json | sha256sum | cut -c1-64)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
  say "installing npm packages"
  # Not `npm ci`: npm 11 leaves other platforms' optional binaries (jest's unrs-resolver) out of the lock file and
  # then calls the lock out of sync. `npm install` keeps to the locked versions all the same.
  npm install --no-audit --no-fund >&2
  echo "$lock_sha" > "$stamp"
fi

command -v go >/dev/null || { say "Go is needed to build the peers (https://go.dev/dl)"; exit 1; }
# The families the tests start; each built once per machine. build-all.sh says on a cold machine what it is building.
bash test/env/peers/build-all.sh kube keptn argocd kustomize flux-source flux-helm helm rollouts flagger
say "ready"
