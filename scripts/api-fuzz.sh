#!/usr/bin/env bash
# Fuzzes the REST API against its own OpenAPI document: a real `kefu serve` on a fresh SQLite
# file, set up as a user would (`kefu init`, a sign-in, an API key made at /admin/api's server
# function, a visitor who chats and leaves a message over the widget's HTTP endpoints), then
# schemathesis (scripts/tools.sh installs it) with every check against /api/v1/openapi.json.
# Any failure fails the run; the counts are printed either way.
#
#   scripts/api-fuzz.sh [KEFU_BINARY]     (default: the release build)
#
# API_FUZZ_EXAMPLES (default 25) is the number of generated cases per operation and phase; the
# seed is fixed, so a run is repeatable and a failure can be replayed.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=${KEFU_TOOLS:-$HOME/.cache/kefu/tools}
ST="$TOOLS/schemathesis/bin/st"
KEFU=$(realpath "${1:-${CARGO_TARGET_DIR:-$HOME/.cache/kefu/target}/release/kefu}")
EXAMPLES=${API_FUZZ_EXAMPLES:-25}
SEED=${API_FUZZ_SEED:-20261206}
[ -x "$ST" ] || { echo "api-fuzz: schemathesis is missing; run scripts/tools.sh --test" >&2; exit 1; }
[ -x "$KEFU" ] || { echo "api-fuzz: no kefu binary at $KEFU" >&2; exit 1; }

DIR=$(mktemp -d)
PID=""
cleanup() {
  [ -z "$PID" ] || kill "$PID" 2>/dev/null || true
  [ -z "$PID" ] || wait "$PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "api-fuzz: $*" >&2; [ ! -f "$DIR/kefu.log" ] || tail -n 30 "$DIR/kefu.log" >&2; exit 1; }

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
PASSWORD=api-fuzz-password
ADMIN=admin@example.com
ORIGIN=https://shop.example

# Set up and started as docs/deploy.md says. The console's assets are not needed for /api/v1.
KEFU_ADMIN_PASSWORD=$PASSWORD "$KEFU" init --non-interactive --config "$DIR/kefu.toml" \
  --bind "127.0.0.1:$PORT" --database-url "sqlite://$DIR/kefu.db" --admin-email "$ADMIN" \
  --site-name Shop --site-origin "$ORIGIN" > "$DIR/init.log" 2>&1 \
  || { cat "$DIR/init.log"; fail "kefu init failed"; }
"$KEFU" serve --config "$DIR/kefu.toml" --log-level warn > "$DIR/kefu.log" 2>&1 &
PID=$!
for _ in $(seq 1 150); do
  curl -fs "$BASE/readyz" > /dev/null && break
  kill -0 "$PID" 2>/dev/null || fail "kefu exited"
  sleep 0.2
done
curl -fs "$BASE/readyz" > /dev/null || fail "kefu did not become ready"

# The administrator signs in and makes a key, as on /admin/api.
JAR="$DIR/cookies"
curl -fsS -c "$JAR" -o /dev/null -H "origin: $BASE" -H 'accept: application/json' \
  --data-urlencode "email=$ADMIN" --data-urlencode "password=$PASSWORD" --data-urlencode mode=auto \
  "$BASE/api/login" || fail "sign-in failed"
TOKEN=$(curl -fsS -b "$JAR" -H "origin: $BASE" -H 'accept: application/json' \
  --data-urlencode 'name=api fuzz' "$BASE/api/admin/api_tokens/create" | python3 -c 'import json, sys; print(json.load(sys.stdin))') \
  || fail "making an API key failed"

# Something to read: a visitor who chats (conversation 1, visitor 1) and leaves a message
# (leave-message 1) through the widget's HTTP endpoints, so the documented examples name
# things that exist.
SITE_KEY=$(curl -fsS -H "authorization: Bearer $TOKEN" "$BASE/api/v1/sites" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["public_key"])') \
  || fail "listing sites failed"
WELCOME=$(curl -fsS -H "origin: $ORIGIN" -H 'content-type: application/json' \
  --data "[{\"type\":\"hello\",\"protocol_version\":1,\"site_key\":\"$SITE_KEY\"},{\"type\":\"send\",\"client_id\":\"c1\",\"body\":\"Where is my order?\"}]" \
  "$BASE/http/visitor/send") || fail "a visitor could not write"
VISITOR_TOKEN=$(python3 -c 'import json, sys; print(next(f["visitor_token"] for f in json.loads(sys.argv[1]) if f["type"] == "welcome"))' "$WELCOME")
curl -fsS -o /dev/null -H "origin: $ORIGIN" -H "x-kefu-visitor-token: $VISITOR_TOKEN" -H 'content-type: application/json' \
  --data '{"name":"Li","contact":"li@example.com","body":"Please call me back"}' \
  "$BASE/http/visitor/leave-message" || fail "a visitor could not leave a message"

echo "api-fuzz: schemathesis $("$ST" --version | awk '{print $NF}') against $BASE$( [ -n "$EXAMPLES" ] && echo ", $EXAMPLES examples per operation"), seed $SEED"
START=$(date +%s)
status=0
# One worker: the server under test shares the machine's two cores. Run from the temporary
# directory, where schemathesis leaves its own files.
(cd "$DIR" && NO_COLOR=1 "$ST" run "$BASE/api/v1/openapi.json" \
  --checks all \
  --header "Authorization: Bearer $TOKEN" \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --workers 1 \
  --generation-database none \
  --no-color) > "$DIR/st.log" 2>&1 || status=$?
cat "$DIR/st.log"
# The totals: schemathesis' own count of test cases (requests checked), and how long it took.
python3 - "$DIR/st.log" "$(( $(date +%s) - START ))" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
line = next((l for l in text.splitlines() if " generated" in l), "")
def count(word):
    found = re.search(rf"(\d+) {word}", line)
    return int(found[1]) if found else 0
failed = count("failed") + count("errored")
print(f"api-fuzz: {count('generated')} cases: {count('passed')} passed, {failed} failed, "
      f"{count('skipped')} skipped ({sys.argv[2]} s)")
EOF
[ "$status" -eq 0 ] || fail "schemathesis found failures (exit $status)"
grep -q 'ERROR' "$DIR/kefu.log" && fail "the server logged errors during the run"
echo "api-fuzz: the API and its document agree"
