#!/usr/bin/env bash
# Prints how long a node takes to serve again on a synthetic log of N entries (default 1,000,000):
# the first start's full replay, then, after a clean stop (SIGTERM: the log attests the state and
# the snapshot is written), the start from that snapshot: until /readyz answers 200, until a
# number-bearing read (/v1/polls) answers 200, and until the background audit ends (/healthz
# "verified", where a node that held numbers until its audit would first have served them).
# Loopback only. Needs the release binaries: cargo build --release -p veche -p veche-load
set -euo pipefail
events="${1:-1000000}"
binaries="${CARGO_TARGET_DIR:-$(dirname "$0")/../target}/release"
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

# shellcheck source=figures-lib.sh
. "$(dirname "$0")/figures-lib.sh"

"$binaries/veche-synthetic-export" --events "$events" --out "$work/export" --data-dir "$work/data" >/dev/null

started=$(now); start_node "$work/server.log"; wait_for /readyz
echo "full replay of $events entries: ready after $(since "$started") s"
kill -TERM "$server"; wait "$server" || true; server=""
grep -o 'wrote the start-up snapshot.*' "$work/server.log" | head -1 || true

started=$(now); start_node "$work/server.log"
wait_for /readyz; ready=$(since "$started")
wait_for /v1/polls; numbers=$(since "$started")
wait_for /healthz '"verified"'; audited=$(since "$started")
echo "start from the attested snapshot: ready after $ready s, numbers served after $numbers s, audit done after $audited s"
awk -v numbers="$numbers" -v audited="$audited" \
  'BEGIN { printf "numbers served after %.3f of the audit'"'"'s time\n", numbers / audited }'
