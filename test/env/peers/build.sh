#!/usr/bin/env bash
# Builds the real peers of one family (a Go tool module under test/env/peers/<family>) into a cache outside the
# repository, keyed by everything that decides the result, and prints the cache directory as the last line.
#
#   bash test/env/peers/build.sh <family>      e.g. kube, flux-source, flux-helm, argocd, keptn
#
# A family directory holds:
#   go.mod, go.sum   the tool module: requires the upstream modules, pinned (no upstream code is copied)
#   targets          one "<binary> <main package>" per line
#   ldflags          optional: extra -ldflags for every target (one line)
#   assets           optional: one "<dest dir> <module path> <dir inside the module>" per line, copied from the
#                    module cache into the cache directory (CRDs, kwok stages, ...)
#
# Cache: ${PEERS_CACHE:-$HOME/.cache/keptn-gitops-service/peers}/<family>-<key>/{bin,<assets>}. A warm call costs
# only the hash; a cold one is paid once per machine. Builds go to a temporary directory and are renamed into place,
# so an interrupted build never leaves a half-filled cache entry.
set -euo pipefail

family=${1:?usage: build.sh <family>}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir="$here/$family"
[ -f "$dir/go.mod" ] || { echo "build.sh: no tool module at $dir" >&2; exit 2; }

key=$( { go version; cat "${BASH_SOURCE[0]}"; for f in go.mod go.sum targets ldflags assets; do
          if [ -f "$dir/$f" ]; then echo "== $f"; cat "$dir/$f"; fi; done; } | sha256sum | cut -c1-16)
cache_root=${PEERS_CACHE:-$HOME/.cache/keptn-gitops-service/peers}
out="$cache_root/$family-$key"
if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache_root"
tmp=$(mktemp -d "$cache_root/.$family-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
ldflags=""
[ -f "$dir/ldflags" ] && ldflags=$(tr -d '\n' < "$dir/ldflags")

cd "$dir"
start=$SECONDS
while read -r bin pkg; do
  [ -z "${bin:-}" ] || [ "${bin:0:1}" = "#" ] && continue
  t0=$SECONDS
  echo "build.sh: building $family/$bin ($pkg)" >&2
  go build -mod=mod -trimpath -ldflags "-s -w $ldflags" -o "$tmp/bin/$bin" "$pkg"
  echo "build.sh: built $family/$bin in $((SECONDS - t0)) s" >&2
done < targets

if [ -f assets ]; then
  while read -r dest mod sub; do
    [ -z "${dest:-}" ] || [ "${dest:0:1}" = "#" ] && continue
    src="$(go list -mod=mod -m -f '{{.Dir}}' "$mod")/$sub"
    mkdir -p "$tmp/$dest"
    cp -R "$src"/. "$tmp/$dest"/
    chmod -R u+w "$tmp/$dest"
  done < assets
fi

echo "$((SECONDS - start))" > "$tmp/.build-seconds"
touch "$tmp/.complete"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "build.sh: $family ready in $((SECONDS - start)) s at $out" >&2
echo "$out"
