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

cargo build --quiet -p widget-wasm --lib --features standalone --target wasm32-unknown-unknown --profile wasm-release
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
wasm-bindgen --target web --no-typescript --out-dir "$OUT.tmp" --out-name kefu_widget \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/widget_wasm.wasm"
# -Oz for size, after flattening and re-looping the control flow (about 300 B gzipped less than
# -Oz alone); the import and export names become one or two letters, in the glue too.
wasm-opt --flatten --rereloop -Oz -Oz --minify-imports-and-exports-and-modules --enable-bulk-memory \
  --enable-nontrapping-float-to-int --strip-producers --strip-target-features \
  "$OUT.tmp/kefu_widget_bg.wasm" -o "$OUT.tmp/kefu_widget_bg.wasm" > "$OUT.tmp/names.json"
node scripts/widget-names.cjs "$OUT.tmp/kefu_widget.js" "$OUT.tmp/names.json"
rm "$OUT.tmp/names.json"
# --bundle pulls the widget's inline JS helpers (wasm-bindgen writes them to snippets/) into the glue.
esbuild --bundle --minify --log-level=warning --format=esm "$OUT.tmp/kefu_widget.js" --outfile="$OUT.tmp/glue.js"
esbuild --minify --log-level=warning widget-wasm/widget.css --outfile="$OUT.tmp/widget.css"
rm -r "$OUT.tmp/kefu_widget.js" "$OUT.tmp/snippets"

# Content-hashed names for everything but the loader: they are served as immutable, while
# widget.js (the URL in customers' pages) is cached briefly and points at the current ones.
hashed() { # file stem extension -> new name
  local name
  name="$2.$(sha256sum "$OUT.tmp/$1" | cut -c1-12).$3"
  mv "$OUT.tmp/$1" "$OUT.tmp/$name"
  echo "$name"
}
GLUE=$(hashed glue.js kefu_widget js)
WASM=$(hashed kefu_widget_bg.wasm kefu_widget_bg wasm)
CSS=$(hashed widget.css widget css)
sed -e "s/__KEFU_GLUE__/$GLUE/" -e "s/__KEFU_WASM__/$WASM/" -e "s/__KEFU_CSS__/$CSS/" \
  widget-wasm/loader.js > "$OUT.tmp/loader.js"
esbuild --minify --log-level=warning "$OUT.tmp/loader.js" --outfile="$OUT.tmp/widget.js"
rm "$OUT.tmp/loader.js"

# Precompressed copies: the server sends .br or .gz as the browser accepts (node's zlib has both).
node -e '
  const fs = require("fs"), zlib = require("zlib"), dir = process.argv[1];
  for (const f of fs.readdirSync(dir)) {
    const raw = fs.readFileSync(dir + "/" + f);
    fs.writeFileSync(dir + "/" + f + ".gz", zlib.gzipSync(raw, { level: 9 }));
    fs.writeFileSync(dir + "/" + f + ".br", zlib.brotliCompressSync(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }));
  }' "$OUT.tmp"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"

total=0
status=0
echo "widget sizes (gzip level 9; brotli in brackets):"
for file in widget.js "$GLUE" "$WASM" "$CSS"; do
  raw=$(stat -c %s "$OUT/$file")
  gz=$(stat -c %s "$OUT/$file.gz")
  br=$(stat -c %s "$OUT/$file.br")
  total=$((total + gz))
  printf '  %-34s %7d B raw  %6d B gzipped  (%d B brotli)\n' "$file" "$raw" "$gz" "$br"
  if [ "$file" = widget.js ] && [ "$gz" -gt "$LOADER_BUDGET" ]; then
    echo "  FAIL: loader is over its budget of $LOADER_BUDGET B gzipped"; status=1
  fi
done
printf '  %-34s %24d B gzipped (budget %d B)\n' total "$total" "$TOTAL_BUDGET"
if [ "$total" -gt "$TOTAL_BUDGET" ]; then
  echo "  FAIL: the widget is over its budget"; status=1
fi
exit $status
