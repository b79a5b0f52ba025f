#!/usr/bin/env bash
# Prints, from one run on one fresh node, anonymous-poll figures beside the pseudonymous ones:
# N pseudonymous ballots (the `ballots` scenario), then N anonymous ballots with the node as the
# only issuer, then N with a `veche co-issuer` process as a second issuer. For each: ballots/s and
# the ratio to the pseudonymous rate, credential requests/s and blind signatures/s, and the bytes
# of a ballot's signed envelope. The machine's speed drifts, so compare the ratios, not the rates
# of different runs. Loopback only. Needs the release binaries:
# cargo build --release -p veche -p veche-load
set -euo pipefail
count="${1:-5000}"
concurrency="${2:-32}"
binaries="${CARGO_TARGET_DIR:-$(dirname "$0")/../target}/release"
work="$(mktemp -d)"
server=""
co_issuer=""
trap 'kill $server $co_issuer 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {
  for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "$1 never answered" >&2; exit 1
}

port=$(free_port)
"$binaries/veche" serve --data-dir "$work/data" --listen "127.0.0.1:$port" \
  --commands-per-address-per-minute 0 --registrations-per-address-per-hour 0 >"$work/server.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
wait_for "$base/readyz"
co_port=$(free_port)
"$binaries/veche" co-issuer --key "$work/co-issuer.key" --server "$base" \
  --listen "127.0.0.1:$co_port" >"$work/co-issuer.log" 2>&1 &
co_issuer=$!
wait_for "http://127.0.0.1:$co_port/v1/co-issuer"

run() {
  "$binaries/veche-load" --server "$base" --admin-key "$work/data/admin.key" -n "$count" \
    -c "$concurrency" --json "$@"
}
run --seed 91 >"$work/pseudonymous.json"
run --seed 92 --scenario anonymous >"$work/anonymous.json"
run --seed 93 --scenario anonymous --co-issuer "http://127.0.0.1:$co_port" >"$work/co-issued.json"

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
runs = {name: json.load(open(f"{work}/{name}.json")) for name in ("pseudonymous", "anonymous", "co-issued")}
base = runs["pseudonymous"]["ballots"]["throughput_acks_per_second"]
print(f"{'run':<13} {'ballots/s':>10} {'ratio':>6} {'p99 ms':>7} {'requests/s':>11} {'node sigs/s':>12} {'co sigs/s':>10} {'bytes':>6} {'tally':>6}")
for name, run in runs.items():
    phases = (run.get("issuance") or {}).get("phases", {})
    rate = lambda phase: phases[phase]["throughput_acks_per_second"] if phase in phases else float("nan")
    ballots = run["ballots"]
    print(f"{name:<13} {ballots['throughput_acks_per_second']:>10.0f} "
          f"{ballots['throughput_acks_per_second'] / base:>6.3f} {ballots['latency_ms']['p99']:>7.1f} "
          f"{rate('requests'):>11.0f} {rate('node signatures'):>12.0f} {rate('co-issuer sigs'):>10.0f} "
          f"{run['ballot_envelope_bytes_mean']:>6.0f} {run['tally']['result']:>6}")
credential_rate = runs["anonymous"]["issuance"]["single_core_credential_verifications_per_second"]
print(f"one core verifies {runs['pseudonymous']['single_core_strict_verifications_per_second']:.0f} Ed25519 signatures/s (strict) "
      f"and {credential_rate:.0f} credentials/s (RSA-2048 PSS); {runs['pseudonymous']['keys']} ballots per run")
PY
