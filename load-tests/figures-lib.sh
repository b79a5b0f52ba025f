# Shell helpers shared by the figures scripts beside it (sourced, not run). The caller sets
# `binaries` (the release binaries' folder) and `work` (its temporary folder).

now() { date +%s.%N; }
since() { awk -v end="$(now)" -v start="$1" 'BEGIN { printf "%.2f", end - start }'; }

# Starts `veche serve` on $work/data and a free loopback port, logging to the file named by the
# first argument, with any further arguments passed to `serve`; sets `server` and `base`.
start_node() {
  local log=$1
  shift
  "$binaries/veche" serve --data-dir "$work/data" --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  server=$!
  base=""
  for _ in $(seq 1 60000); do
    address=$(grep -o 'address=[0-9.:]*' "$log" | head -1 | cut -d= -f2 || true)
    if [ -n "$address" ]; then base="http://$address"; return; fi
    sleep 0.01
  done
  echo "the server never said where it listens" >&2; cat "$log" >&2; exit 1
}

# Waits until `path` answers 200 on $base (and, with a second argument, until its body holds it).
wait_for() {
  for _ in $(seq 1 600000); do
    body=$(curl -s -w '\n%{http_code}' "$base$1" || true)
    if [ "${body##*$'\n'}" = 200 ] && { [ -z "${2:-}" ] || [[ "$body" == *"$2"* ]]; }; then return; fi
    sleep 0.01
  done
  echo "$1 never answered 200 ${2:-}" >&2; exit 1
}
