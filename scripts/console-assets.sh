#!/usr/bin/env bash
# Prints what a browser downloads to open the console the first time: the hydrate wasm, its JS
# glue and the stylesheet, as sent (brotli, the smallest of the precompressed copies) and
# gzipped, against the 300 KB budget (issue 21). Reports, does not fail: the budget is a target.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG=target/site/pkg
BUDGET=307200
total_br=0 total_gz=0
for kind in wasm js css; do
  file=$(ls "$PKG"/kefu.*."$kind" 2>/dev/null | head -n1)
  [ -n "$file" ] || { echo "console-assets: no kefu.*.$kind in $PKG (built with hash-files?)" >&2; exit 1; }
  raw=$(stat -c %s "$file") br=$(stat -c %s "$file.br") gz=$(stat -c %s "$file.gz")
  printf 'console-assets: %-40s %9d B raw %9d B br %9d B gzip\n' "$(basename "$file")" "$raw" "$br" "$gz"
  total_br=$((total_br + br)) total_gz=$((total_gz + gz))
done
verdict="within"
[ "$total_gz" -le "$BUDGET" ] || verdict="OVER"
printf 'console-assets: first load %d B brotli, %d B gzip; budget %d B gzip: %s\n' "$total_br" "$total_gz" "$BUDGET" "$verdict"
