#!/usr/bin/env bash
# Builds the release visitor widget into target/widget: wasm (size-optimised), its JS glue, the
# loader and the stylesheet, each minified and gzipped. Prints every file's gzipped size and fails
# when the budget is exceeded (loader ≤ 3 KB, everything ≤ 30 KB, gzipped).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=target}"
OUT=target/widget
LOADER_BUDGET=3072
TOTAL_BUDGET=30720

cargo build --quiet -p widget-wasm --lib --target wasm32-unknown-unknown --profile wasm-release
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
wasm-bindgen --target web --no-typescript --out-dir "$OUT.tmp" --out-name kefu_widget \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/widget_wasm.wasm"
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  "$OUT.tmp/kefu_widget_bg.wasm" -o "$OUT.tmp/kefu_widget_bg.wasm"
esbuild --minify --log-level=warning --format=esm "$OUT.tmp/kefu_widget.js" --outfile="$OUT.tmp/kefu_widget.min.js"
mv "$OUT.tmp/kefu_widget.min.js" "$OUT.tmp/kefu_widget.js"
esbuild --minify --log-level=warning widget-wasm/loader.js --outfile="$OUT.tmp/widget.js"
esbuild --minify --log-level=warning widget-wasm/widget.css --outfile="$OUT.tmp/widget.css"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"

total=0
status=0
echo "widget sizes (gzip -9):"
for file in widget.js kefu_widget.js kefu_widget_bg.wasm widget.css; do
  gzip -9 -k -f "$OUT/$file"
  raw=$(stat -c %s "$OUT/$file")
  gz=$(stat -c %s "$OUT/$file.gz")
  total=$((total + gz))
  printf '  %-22s %7d B raw  %6d B gzipped\n' "$file" "$raw" "$gz"
  if [ "$file" = widget.js ] && [ "$gz" -gt "$LOADER_BUDGET" ]; then
    echo "  FAIL: loader is over its budget of $LOADER_BUDGET B gzipped"; status=1
  fi
done
printf '  %-22s %24d B gzipped (budget %d B)\n' total "$total" "$TOTAL_BUDGET"
if [ "$total" -gt "$TOTAL_BUDGET" ]; then
  echo "  FAIL: the widget is over its budget"; status=1
fi
exit $status
