#!/usr/bin/env bash
# Prints veche's acknowledged ballots/s on PostgreSQL, one node and three, beside PostgreSQL's own
# durable single-row INSERT rate on this machine, measured first by pgbench in the same run
# (8 clients, one INSERT of a 200-byte row per transaction, synchronous commit as configured).
# Each veche run starts on a fresh database; the three nodes share one data directory's keys and
# Redis, and each gets its own generator. Loopback only. Needs the release binaries
# (cargo build --release -p veche -p veche-load), pgbench and psql, and a PostgreSQL that
# accepts `postgres` without a password (DATABASE_HOST, default 127.0.0.1:5432).
# Usage: load-tests/postgres-figures.sh [ballots per node, default 20000] [pgbench seconds, default 20]
set -euo pipefail
count="${1:-20000}"
seconds="${2:-20}"
host="${DATABASE_HOST:-127.0.0.1:5432}"
redis="${REDIS_URL:-redis://127.0.0.1:6379}"
binaries="${CARGO_TARGET_DIR:-$(dirname "$0")/../target}/release"
work="$(mktemp -d)"
servers=()
trap 'for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"' EXIT

admin_url="postgres://postgres@$host/postgres"
fresh_database() {
  PGOPTIONS=--client-min-messages=warning psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
}
wait_for() {
  for _ in $(seq 1 600); do curl -fsS "$1" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "$1 never answered" >&2; exit 1
}

# PostgreSQL's own rate.
fresh_database veche_pgbench
psql -q "postgres://postgres@$host/veche_pgbench" \
  -c "CREATE TABLE rows (id bigserial PRIMARY KEY, payload bytea NOT NULL)" >/dev/null
echo "INSERT INTO rows (payload) VALUES (decode(repeat('ab', 200), 'hex'));" >"$work/insert.sql"
pgbench -n -c 8 -j 2 -T "$seconds" -f "$work/insert.sql" "postgres://postgres@$host/veche_pgbench" \
  >"$work/pgbench.txt" 2>&1
pgbench_rate=$(grep -Eo 'tps = [0-9.]+' "$work/pgbench.txt" | head -1 | cut -d' ' -f3)
echo "pgbench: $pgbench_rate single-row INSERT transactions/s (8 clients, ${seconds} s)"

# veche on `nodes` nodes over one fresh database; prints the summed acknowledged ballots/s.
veche_rate() {
  local nodes=$1 database="veche_figures_$1"
  fresh_database "$database"
  rm -rf "$work/data"
  "$binaries/veche" init --data-dir "$work/data" >/dev/null 2>&1
  servers=()
  local ports=()
  for node in $(seq 1 "$nodes"); do
    local port=$((18080 + node))
    VECHE_STORE="postgres://postgres@$host/$database" "$binaries/veche" serve \
      --data-dir "$work/data" --listen "127.0.0.1:$port" --redis "$redis" \
      --commands-per-address-per-minute 0 --registrations-per-address-per-hour 0 \
      >"$work/server-$node.log" 2>&1 &
    servers+=($!)
    ports+=("$port")
    wait_for "http://127.0.0.1:$port/readyz"
  done
  local generators=()
  for port in "${ports[@]}"; do
    "$binaries/veche-load" --server "http://127.0.0.1:$port" --admin-key "$work/data/admin.key" \
      -n "$count" -c 64 --seed "$port" --json >"$work/load-$nodes-$port.json" &
    generators+=($!)
  done
  for generator in "${generators[@]}"; do wait "$generator"; done
  for pid in "${servers[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
  servers=()
  python3 - "$work" "$nodes" <<'PY'
import glob, json, sys
runs = [json.load(open(path)) for path in glob.glob(f"{sys.argv[1]}/load-{sys.argv[2]}-*.json")]
print(sum(run["ballots"]["throughput_acks_per_second"] for run in runs))
PY
}

one=$(veche_rate 1)
three=$(veche_rate 3)
awk -v pg="$pgbench_rate" -v one="$one" -v three="$three" 'BEGIN {
  printf "veche, 1 node:  %8.0f ballots/s = %.2f x pgbench\n", one, one / pg
  printf "veche, 3 nodes: %8.0f ballots/s = %.2f x pgbench (target: at least 1.0)\n", three, three / pg
}'
