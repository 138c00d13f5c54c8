#!/usr/bin/env bash
# Everything the service's demo and tests need on a fresh machine, and nothing more on a warm one:
# Debian packages, npm packages (Node 24 comes with them), and the real peers built from their upstream Go modules
# into a cache outside the repository (test/env/peers/build.sh). Cold: tens of minutes (Go builds); warm: seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "setup: $*" >&2; }

need=()
for pkg in git openssl openssh-client openssh-server nats-server redis-server util-linux shellcheck; do
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
families=(kube keptn argocd kustomize flux-source flux-helm helm rollouts flagger)
# Cold build of each family on 2 cores, in seconds: docs/development.md "Measured (2 cores)" (keep them in step).
declare -A measured=([kube]=285 [keptn]=9 [argocd]=252 [kustomize]=10 [flux-source]=249 [flux-helm]=78 [helm]=249
  [rollouts]=191 [flagger]=144)
minutes() { echo "$(( ($1 + 59) / 60 )) min"; }

# Which families are not in the cache yet. build.sh decides that itself (its key covers the family's files, the script
# and the Go version), so ask it, with a `go` on PATH that answers `go version` and refuses to build: a cached family
# prints its directory and exits 0, a missing one stops at its first `go build`. No key is computed twice.
shim=$(mktemp -d)
build=""
trap 'rm -rf "$shim"; [ -z "$build" ] || kill "$build" 2>/dev/null || true' EXIT
real_go=$(command -v go)
# shellcheck disable=SC2016 # $1 is the shim's own argument, not this script's
printf '#!/bin/sh\n[ "$1" = version ] && exec "%s" version\nexit 97\n' "$real_go" > "$shim/go"
chmod +x "$shim/go"
cold=()
for family in "${families[@]}"; do
  PATH="$shim:$PATH" bash test/env/peers/build.sh "$family" >/dev/null 2>&1 || cold+=("$family")
done

# A warm machine is done here. A cold one builds for tens of minutes: say what, how many are left and how long each
# takes, and keep the Go toolchain's own output in a log that is shown only if the build fails.
if [ ${#cold[@]} -gt 0 ]; then
  total=0
  for family in "${cold[@]}"; do total=$((total + ${measured[$family]:-120})); done
  say "building ${#cold[@]} of ${#families[@]} peer families from their Go modules, about $(minutes $total) on 2 cores" \
    "(once per machine; cached in ${PEERS_CACHE:-$HOME/.cache/keptn-gitops-service/peers})"
  n=0
  for family in "${cold[@]}"; do
    n=$((n + 1))
    estimate=${measured[$family]:-120}
    left=("${cold[@]:n}")
    after=0
    for f in "${left[@]}"; do after=$((after + ${measured[$f]:-120})); done
    if [ ${#left[@]} -gt 0 ]; then
      say "[$n/${#cold[@]}] $family: building, about $(minutes "$estimate"); then ${left[*]} (about $(minutes $after))"
    else
      say "[$n/${#cold[@]}] $family: building, about $(minutes "$estimate"); the last one"
    fi
    log=$(mktemp "${TMPDIR:-/tmp}/keptn-gitops-setup-$family.XXXXXX")
    t0=$SECONDS
    bash test/env/peers/build.sh "$family" >/dev/null 2>"$log" &
    build=$!
    # A line a minute while it runs, so a long build does not look like a hang.
    next=60
    while kill -0 "$build" 2>/dev/null; do
      sleep 1
      if [ $((SECONDS - t0)) -ge $next ]; then
        say "[$n/${#cold[@]}] $family: $((next / 60)) min so far, about $(minutes "$estimate") in all"
        next=$((next + 60))
      fi
    done
    status=0
    wait "$build" || status=$?
    build=""
    if [ $status -ne 0 ]; then
      say "[$n/${#cold[@]}] $family: build failed after $((SECONDS - t0)) s; its output:"
      tail -n 40 "$log" >&2
      say "(whole log: $log)"
      exit 1
    fi
    rm -f "$log"
    say "[$n/${#cold[@]}] $family: built in $((SECONDS - t0)) s"
  done
fi
say "ready"
