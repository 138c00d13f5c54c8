#!/usr/bin/env bash
# Checks the GitHub Actions workflows (.github/workflows) with actionlint, which cannot run here: syntax, expressions,
# contexts, permissions, and the `run:` scripts through shellcheck when it is installed (scripts/setup.sh installs it).
# actionlint is built from its Go module like the peers, into the same content-keyed cache (test/env/peers/actionlint).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

shopt -s nullglob
workflows=(.github/workflows/*.yaml .github/workflows/*.yml)
[ ${#workflows[@]} -gt 0 ] || exit 0

dir=$(bash test/env/peers/build.sh actionlint | tail -n 1)
command -v shellcheck >/dev/null || echo "lint-workflows: shellcheck not found, run: scripts are not checked" >&2
"$dir/bin/actionlint" -no-color "${workflows[@]}"
echo "lint-workflows: ${#workflows[@]} workflow(s) pass actionlint" >&2
