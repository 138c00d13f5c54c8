#!/usr/bin/env bash
# `npm test`: the unit project on two workers, then the end-to-end project one file at a time.
# - Unit files share nothing and spend most of their time waiting for git subprocesses and timers: two workers take
#   about 80 s where one takes over 200 s.
# - Each end-to-end file starts its own kube-apiserver, controllers, Git server and NATS; two at once would split two
#   cores between clusters whose tests measure how soon things happen.
# Arguments go to both runs (a path or -t that matches only one project leaves the other with nothing to do, which
# is no failure). `--json --outputFile=F` writes one report to F for both runs, as a single jest run would.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--experimental-vm-modules"

args=()
out=""
while (($#)); do
  case "$1" in
    --outputFile=*) out="${1#--outputFile=}" ;;
    --outputFile) out="${2:-}"; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done

status=0
run() { # <project> <report> <jest options...>
  local project=$1 report=$2
  shift 2
  npx jest --selectProjects "$project" --passWithNoTests "$@" ${args[@]+"${args[@]}"} ${report:+--outputFile="$report"} || status=1
}
if [[ -n "$out" ]]; then
  reports=$(mktemp -d)
  run unit "$reports/unit.json" --maxWorkers=2
  run e2e "$reports/e2e.json" --runInBand
  node scripts/merge-reports.mjs "$out" "$reports/unit.json" "$reports/e2e.json" || status=1
  rm -rf "$reports"
else
  run unit "" --maxWorkers=2
  run e2e "" --runInBand
fi
exit $status
