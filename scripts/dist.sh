#!/usr/bin/env bash
# `make dist`: the release tarball, dist/kefu-<version>-linux-<arch>.tar.gz, from what
# `make build` made. It holds everything a server needs and nothing of the build: the `kefu`
# binary and its hash.txt, the console's assets (site/), the widget (widget/), Leptos.toml pointing at site/, an
# example kefu.toml, an empty data/ for the SQLite database, the systemd unit, an nginx site,
# a Dockerfile, and the deployment guide in English and Simplified Chinese.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/kefu/target}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
NAME="kefu-$VERSION-linux-$(uname -m)"
STAGE="dist/$NAME"

for built in "$TARGET/release/kefu" "$TARGET/release/hash.txt" target/site/pkg target/widget/widget.js; do
  [ -e "$built" ] || { echo "dist: $built is missing; run make build first" >&2; exit 1; }
done

rm -rf "$STAGE" "dist/$NAME.tar.gz"
mkdir -p "$STAGE/data" "$STAGE/docs"
# hash.txt names the console's content-hashed files; the binary looks for it beside itself.
cp "$TARGET/release/kefu" "$TARGET/release/hash.txt" "$STAGE/"
cp -r target/site "$STAGE/site"
cp -r target/widget "$STAGE/widget"
# The same site options, with the assets where the release keeps them.
sed 's|^site-root = "target/site"|site-root = "site"|' Leptos.toml > "$STAGE/Leptos.toml"
grep -q '^site-root = "site"' "$STAGE/Leptos.toml" || { echo "dist: Leptos.toml has no site-root to point at site/" >&2; exit 1; }
cp deploy/kefu.service deploy/nginx.conf deploy/Dockerfile deploy/kefu.toml.example "$STAGE/"
cp docs/deploy.md docs/deploy.zh-CN.md "$STAGE/docs/"
tar -C dist -czf "dist/$NAME.tar.gz" "$NAME"
rm -rf "$STAGE"
echo "dist: dist/$NAME.tar.gz ($(du -h "dist/$NAME.tar.gz" | cut -f1))"
