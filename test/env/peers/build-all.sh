#!/usr/bin/env bash
# Builds the given peer families (build.sh, one after another) and, on a cold machine, says what it is doing: which
# family, how many are left and about how long each takes, with a line a minute while one builds. The Go toolchain's
# output goes to a log that is shown only when a build fails. Families already in the cache cost a hash each and print
# nothing, so a warm run is silent.
#
#   bash test/env/peers/build-all.sh <family>...      (scripts/setup.sh passes the families the tests start)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -gt 0 ] || { echo "usage: build-all.sh <family>..." >&2; exit 2; }
families=("$@")
say() { echo "peers: $*" >&2; }

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
  PATH="$shim:$PATH" bash "$here/build.sh" "$family" >/dev/null 2>&1 || cold+=("$family")
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
    log=$(mktemp "${TMPDIR:-/tmp}/keptn-gitops-peers-$family.XXXXXX")
    t0=$SECONDS
    bash "$here/build.sh" "$family" >/dev/null 2>"$log" &
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
