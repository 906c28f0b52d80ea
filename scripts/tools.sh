#!/usr/bin/env bash
# Installs whatever the build and the tests need and is missing, then exits quickly when all is
# there. Everything goes outside the clone (KEFU_TOOLS), so a fresh clone reuses it.
# Nothing here downloads prebuilt binaries from outside the package registries.
set -euo pipefail

TOOLS=${KEFU_TOOLS:-$HOME/.cache/kefu/tools}
CARGO_LEPTOS_VERSION=0.3.10
BINARYEN_VERSION=132.0.0
ESBUILD_VERSION=0.28.2
AIOSMTPD_VERSION=1.4.6
SCHEMATHESIS_VERSION=4.32.5
mkdir -p "$TOOLS/bin"
cd "$(dirname "$0")/.."

say() { printf '\033[1mtools:\033[0m %s\n' "$*"; }

# wasm-bindgen-cli must equal the wasm-bindgen crate the lockfile picked.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! "$TOOLS/bin/cargo-leptos" --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION"; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (no_downloads; ~15 min once)"
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install "cargo-leptos@$CARGO_LEPTOS_VERSION" --locked --features no_downloads --root "$TOOLS"
fi

if ! "$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (matches Cargo.lock)"
  # Not --locked: its lockfile asks for a crate version the registry does not have.
  cargo install "wasm-bindgen-cli@$WASM_BINDGEN_VERSION" --force --root "$TOOLS"
fi

# wasm-opt from npm binaryen (Debian's older binaryen emits wasm that breaks at run time) and
# esbuild to minify the widget's JS; pinned, installed into the tools folder.
node_version() { node -p "require('$TOOLS/node/node_modules/$1/package.json').version" 2>/dev/null || true; }
if [ "$(node_version binaryen)" != "$BINARYEN_VERSION" ] || [ "$(node_version esbuild)" != "$ESBUILD_VERSION" ]; then
  say "installing binaryen $BINARYEN_VERSION and esbuild $ESBUILD_VERSION from npm"
  mkdir -p "$TOOLS/node"
  npm install --prefix "$TOOLS/node" --no-audit --no-fund --save-exact \
    "binaryen@$BINARYEN_VERSION" "esbuild@$ESBUILD_VERSION" >/dev/null
fi
ln -sf "$TOOLS/node/node_modules/.bin/wasm-opt" "$TOOLS/bin/wasm-opt"
ln -sf "$TOOLS/node/node_modules/.bin/esbuild" "$TOOLS/bin/esbuild"

if [ "${1:-}" = "--test" ]; then
  # Chromium for Playwright comes from Debian; Playwright never downloads a browser here.
  if ! command -v chromium >/dev/null; then
    say "installing Chromium from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation fonts-wqy-microhei >/dev/null
  fi
  # A CJK font, so the Chinese console renders as text in screenshots, not as empty boxes.
  if [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
    say "installing a CJK font from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-wqy-microhei >/dev/null
  fi
  # nginx in front of three nodes and a Redis server of their own for the cluster tests
  # (server/tests/cluster.rs) and bench, from Debian. The packages must not start system
  # services: a policy-rc.d refuses service starts while they install.
  missing=""
  [ -x /usr/sbin/nginx ] || missing="$missing nginx"
  command -v redis-server >/dev/null || missing="$missing redis-server"
  if [ -n "$missing" ]; then
    say "installing$missing from Debian (cluster tests)"
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      refused_starts=1
    fi
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    [ -z "${refused_starts:-}" ] || rm -f /usr/sbin/policy-rc.d
  fi
  # A real SMTP server for the e-mail tests (server/tests/email.rs), from PyPI.
  if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    say "installing aiosmtpd $AIOSMTPD_VERSION (SMTP server for the e-mail tests)"
    python3 -m pip install --quiet --user --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
  fi
  # The API fuzzer (scripts/api-fuzz.sh), from PyPI, in a virtualenv of its own so its many
  # dependencies stay out of the system's Python.
  if [ "$("$TOOLS/schemathesis/bin/st" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
    say "installing schemathesis $SCHEMATHESIS_VERSION (API fuzzer)"
    python3 -m venv --clear "$TOOLS/schemathesis"
    "$TOOLS/schemathesis/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  if [ ! -d end2end/node_modules/@playwright/test ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    say "installing Playwright (test runner only, no browsers)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >/dev/null)
  fi
fi
