#!/usr/bin/env bash
# Checks the release tarball the way a server gets it: unpacked into an empty directory and
# started from there, with no source tree, no cargo and no build tools on the PATH. The console
# must render and hydrate its assets, and the widget's loader must be served.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/dist.sh
TARBALL=$(ls -t dist/kefu-*.tar.gz | head -n1)
DIR=$(mktemp -d)
PORT=${KEFU_DIST_TEST_PORT:-3990}
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT
tar -C "$DIR" -xzf "$TARBALL"
cd "$DIR"/kefu-*
cp kefu.toml.example kefu.toml
# The console's files by their content-hashed names (hash.txt: "js: <hash>" and so on).
hashed() { echo "kefu.$(sed -n "s/^$1: //p" hash.txt).$1"; }
JS=$(hashed js) CSS=$(hashed css) WASM=$(hashed wasm)
# Marks the unpacked copies, to see they (not the build tree's) are what is served (the plain
# file: a request without Accept-Encoding gets it, not the precompressed ones).
echo "/* dist-test */" >> "site/pkg/$CSS"
echo "// dist-test" >> widget/widget.js
# Set up as docs/deploy.md says (kefu init), then started as systemd would, by itself.
env -i HOME="$DIR" PATH=/usr/bin:/bin KEFU_ADMIN_PASSWORD=dist-test-password ./kefu init \
  --non-interactive --config kefu.toml --bind "127.0.0.1:$PORT" --admin-email admin@example.com \
  --site-name Shop --site-origin https://shop.example > init.log 2>&1 \
  || { cat init.log; echo "dist-test: kefu init failed" >&2; exit 1; }
env -i HOME="$DIR" PATH=/usr/bin:/bin ./kefu serve --config kefu.toml > kefu.log 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/readyz" > /dev/null && break
  kill -0 "$PID" 2>/dev/null || { cat kefu.log; echo "dist-test: kefu exited" >&2; exit 1; }
  sleep 0.2
done
fetch() {
  local path=$1 expect=$2
  curl -fsS "http://127.0.0.1:$PORT$path" -o body || { cat kefu.log; echo "dist-test: GET $path failed" >&2; exit 1; }
  grep -q "$expect" body || { echo "dist-test: GET $path lacks $expect" >&2; exit 1; }
}
fetch /login 'name="password"'
fetch /login "/pkg/$JS"
fetch /login "/pkg/$CSS"
fetch "/pkg/$JS" 'hydrate'
fetch "/pkg/$CSS" 'dist-test'
fetch /widget/widget.js 'dist-test'
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/pkg/$WASM" || { echo "dist-test: no console wasm" >&2; exit 1; }
curl -fsS -D headers -o /dev/null -H 'accept-encoding: br' "http://127.0.0.1:$PORT/pkg/$WASM"
grep -qi '^content-encoding: br' headers || { cat headers; echo "dist-test: the wasm is not sent compressed" >&2; exit 1; }
grep -qi '^cache-control: public, max-age=31536000, immutable' headers || { cat headers; echo "dist-test: the wasm has no immutable cache" >&2; exit 1; }
[ -f data/kefu.db ] || { echo "dist-test: the database is not in data/" >&2; exit 1; }
echo "dist-test: $(basename "$TARBALL") unpacked and served the console and the widget"
