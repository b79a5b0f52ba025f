#!/usr/bin/env bash
# Prints what a crash costs a node on a synthetic log of N entries (default 10,000,000: 10 ballots
# per citizen over 100 polls): the first start's full replay; the first periodic snapshot, made
# in the background (its fold, encoding and file, from the node's log line); then a load run
# against the node, SIGKILLed part-way (no clean stop, so no stop-time snapshot); and the
# restart from the periodic snapshot, until /readyz answers 200 and until the audit that follows
# ends. Peak RSS (VmHWM) after each stage. Loopback only. Needs the release binaries:
# cargo build --release -p veche -p veche-load
# Usage: load-tests/crash-figures.sh [entries] [seconds of load before the kill, default 40]
#   [ballots the generator offers, default 300000; it first makes and registers their keys]
set -euo pipefail
events="${1:-10000000}"
load_seconds="${2:-40}"
load_ballots="${3:-300000}"
binaries="${CARGO_TARGET_DIR:-$(dirname "$0")/../target}/release"
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill -9 "$server" 2>/dev/null; rm -rf "$work"' EXIT

# shellcheck source=figures-lib.sh
. "$(dirname "$0")/figures-lib.sh"

peak() { awk '/VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$server/status"; }

# Starts the node logging to server-NAME.log, with per-address limits off for one generator.
start() {
  start_node "$work/server-$1.log" \
    --commands-per-address-per-minute 0 --registrations-per-address-per-hour 0
}

# Waits until the server's log holds `text`.
wait_for_line() {
  until grep -q "$2" "$work/server-$1.log"; do sleep 0.2; done
}

started=$(now)
"$binaries/veche-synthetic-export" --events "$events" --ballots-per-citizen 10 \
  --out "$work/export" --data-dir "$work/data" >/dev/null
rm -f "$work/export"
echo "synthetic log of $events entries written in $(since "$started") s"

started=$(now); start first; wait_for /readyz
echo "full replay: ready after $(since "$started") s, peak RSS $(peak)"
wait_for_line first 'wrote a periodic snapshot'
echo "first periodic snapshot: $(grep -o 'wrote a periodic snapshot.*' "$work/server-first.log" | head -1)"
echo "  peak RSS so far $(peak)"

"$binaries/veche-load" --server "$base" --admin-key "$work/data/admin.key" -n "$load_ballots" -c 32 \
  >"$work/load.txt" 2>&1 &
load=$!
sleep "$load_seconds"
kill -9 "$server"; wait "$server" 2>/dev/null || true
kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true
server=""
echo "SIGKILLed under load after $load_seconds s; the log's end then:"
grep -o 'wrote a periodic snapshot.*' "$work/server-first.log" | tail -1

started=$(now); start second; wait_for /readyz; ready=$(since "$started")
echo "restart: ready after $ready s, peak RSS $(peak)"
grep -o 'log in hand and checked.*' "$work/server-second.log" | head -1 || true
wait_for /healthz '"verified"'
echo "audit done after $(since "$started") s, peak RSS $(peak)"
