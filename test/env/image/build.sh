#!/usr/bin/env bash
# Builds the service's image from the repository's Dockerfile with buildah (no Docker engine needed) and prints its
# name as the last line. The Dockerfile's base, node:24-bookworm-slim, cannot be pulled on this project's machines, so
# a stand-in for it is made from Debian packages (mmdebstrap) and the Node binary the npm registry ships, and passed as
# the NODE_IMAGE build argument: the Dockerfile users build stays exactly as it is.
#
#   bash test/env/image/build.sh          prints e.g. localhost/keptn-gitops-service:ci-0123456789abcdef
#
# Both are cached by content in buildah storage outside the repository,
# ${IMAGE_CACHE:-$HOME/.cache/keptn-gitops-service/image}/{storage,run}, as the peers are (test/env/peers/build.sh):
#   the stand-in   keyed by this script, the Debian suite, the Node version (package.json's `node` devDependency)
#                  and the npm version;
#   the image      keyed by the stand-in and everything the Dockerfile reads (itself, .dockerignore and the files it
#                  COPYs: package files, tsconfig files, src/).
# Warm, both cost a hash and a lookup. Cold: the stand-in about 2 minutes, the image about 3 (2 cores).
# Other scripts use the same storage with: buildah $(bash test/env/image/build.sh --storage-flags) ...
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cache=${IMAGE_CACHE:-$HOME/.cache/keptn-gitops-service/image}
# vfs: plain directories, no overlay mounts (which a sandbox may refuse); chroot isolation needs no OCI runtime.
storage=(--root "$cache/storage" --runroot "$cache/run" --storage-driver vfs)
if [ "${1:-}" = --storage-flags ]; then echo "${storage[*]}"; exit 0; fi
say() { echo "image: $*" >&2; }
bah() { buildah "${storage[@]}" "$@"; }
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { say "$tool is missing (Debian package $tool; scripts/setup.sh installs it)"; exit 1; }
done

suite=bookworm
node_version=$(node -p "require('$repo/package.json').devDependencies.node")
# The npm of the real image's Node 24 line; the build stage runs `npm install` and `npm run build` with it.
npm_version=11.6.2
case $(uname -m) in
  x86_64) node_arch=x64 ;;
  aarch64) node_arch=arm64 ;;
  *) say "no Node binary package for $(uname -m)"; exit 1 ;;
esac

# The build stage's `npm install` reaches the registry through whatever TLS this machine trusts (a proxy of its own
# may sign for the registry), so the stand-in's npm trusts the host's CA bundle: npm's global config in the stand-in
# only, never in the Dockerfile, and so not in an image built from node's real base.
host_ca=/etc/ssl/certs/ca-certificates.crt
standin_key=$( { cat "${BASH_SOURCE[0]}"; echo "$suite $node_version $npm_version $node_arch";
  [ ! -f "$host_ca" ] || cat "$host_ca"; } | sha256sum | cut -c1-16)
standin=localhost/keptn-gitops-node-standin:$standin_key
mkdir -p "$cache"

if ! bah inspect --type image "$standin" >/dev/null 2>&1; then
  t0=$SECONDS
  say "making a stand-in for node:24-$suite-slim (Debian $suite, Node $node_version, npm $npm_version): once per machine"
  work=$(mktemp -d "$cache/.standin.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # Node and npm as the npm registry ships them; the official tarball's host is not reachable from here.
  (cd "$work" && npm pack --silent "node-linux-$node_arch@$node_version" "npm@$npm_version" >/dev/null)
  # What debian:bookworm-slim is: minbase with the same suites, and no manuals, docs or translations (the slim
  # images' dpkg excludes), so the sizes measured on the stand-in are the real image's.
  excludes=()
  for p in doc man groff info lintian linda locale; do excludes+=("--dpkgopt=path-exclude=/usr/share/$p/*"); done
  mmdebstrap --quiet --variant=minbase "${excludes[@]}" --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    "$suite" "$work/rootfs" \
    "deb http://deb.debian.org/debian $suite main" \
    "deb http://deb.debian.org/debian $suite-updates main" \
    "deb http://deb.debian.org/debian-security $suite-security main" >&2
  rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
  # Debian's container images delete downloaded packages after every dpkg run (their apt.conf.d/docker-clean); the
  # stand-in does the same, so it keeps what the real base keeps.
  cat > "$work/rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  # The parts of node's official image the Dockerfile relies on: node in /usr/local/bin, npm in
  # /usr/local/lib/node_modules with its links, and the `node` user and group, uid/gid 1000.
  root=$work/rootfs
  tar -xzf "$work/node-linux-$node_arch-$node_version.tgz" -C "$work"
  install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
  rm -rf "$work/package"
  mkdir -p "$root/usr/local/lib/node_modules"
  tar -xzf "$work/npm-$npm_version.tgz" -C "$work"
  mv "$work/package" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  if [ -f "$host_ca" ]; then
    mkdir -p "$root/usr/local/etc"
    install -m 0644 "$host_ca" "$root/usr/local/etc/host-ca.crt"
    echo "cafile=/usr/local/etc/host-ca.crt" > "$root/usr/local/etc/npmrc"
  fi
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  [ "$(chroot "$root" /usr/local/bin/node --version)" = "v$node_version" ] || { say "node does not run in the stand-in"; exit 1; }
  ctr=$(bah from scratch)
  trap 'rm -rf "$work"; buildah "${storage[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
  bah add "$ctr" "$root" / >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env "NODE_VERSION=$node_version" \
    --cmd node "$ctr"
  bah commit --quiet --rm "$ctr" "$standin" >/dev/null
  # Earlier stand-ins (another script, suite or Node version) are only ballast now.
  bah images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/keptn-gitops-node-standin:' | grep -vx "$standin" |
    xargs -r buildah "${storage[@]}" rmi >/dev/null 2>&1 || true
  rm -rf "$work"
  trap - EXIT
  say "stand-in ready in $((SECONDS - t0)) s: $standin"
fi

# Everything the Dockerfile reads, as .dockerignore lets it into the context, and the stand-in it builds on.
image_key=$( { echo "$standin"; cd "$repo" && for f in Dockerfile .dockerignore package.json package-lock.json \
  tsconfig.json tsconfig.build.json $(find src -type f | LC_ALL=C sort); do echo "== $f"; cat "$f"; done; } |
  sha256sum | cut -c1-16)
image=localhost/keptn-gitops-service:ci-$image_key
if ! bah inspect --type image "$image" >/dev/null 2>&1; then
  t0=$SECONDS
  say "building the image from the Dockerfile on the stand-in"
  bah bud --quiet --isolation chroot --build-arg "NODE_IMAGE=$standin" --build-arg VERSION=ci \
    --build-arg "REVISION=$image_key" -t "$image" "$repo" >&2
  # Keep one image: with vfs every layer is a whole copy of the file system, so older ones are heavy ballast.
  bah images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/keptn-gitops-service:' | grep -vx "$image" |
    xargs -r buildah "${storage[@]}" rmi >/dev/null 2>&1 || true
  say "image ready in $((SECONDS - t0)) s: $image"
fi
echo "$image"
