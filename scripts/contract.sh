#!/usr/bin/env bash
# Runs the Store contract suite unchanged on each backend given as NAME URL pairs (an empty URL
# means SQLite in a temp dir) and prints how many contract tests passed on each.
set -euo pipefail
cd "$(dirname "$0")/.."
summary=()
while [ $# -ge 2 ]; do
  name=$1 url=$2; shift 2
  log=$(mktemp)
  echo "== store contract on $name"
  if [ -n "$url" ]; then export TEST_DATABASE_URL=$url; else unset TEST_DATABASE_URL; fi
  if ! cargo test -p store --test it -- contract:: 2>&1 | tee "$log"; then
    echo "store contract FAILED on $name"; exit 1
  fi
  passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$log" | grep -Eo '[0-9]+' | head -1)
  if [ -z "$passed" ] || [ "$passed" -eq 0 ]; then
    echo "store contract ran no test on $name"; exit 1
  fi
  summary+=("  $name: $passed contract tests passed")
  rm -f "$log"
done
echo "store contract summary:"
printf '%s\n' "${summary[@]}"
