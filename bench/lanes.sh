#!/usr/bin/env bash
# Lanes under load: while a bulk (advertising) campaign of N messages
# (default 200,000) drains at full speed, transactional messages at 50/s keep
# accept -> submit_sm p99 <= 20 ms. Prints p50/p99 of both lanes, medians
# [min-max] over RUNS runs (default 3); each run starts a fresh simulator and
# a fresh kaskad (release build, SQLite, sync full) on an empty data folder,
# one route of 2 sessions x window 200.
#   bench/lanes.sh            RUNS=3 N=200000 RATE=50 MODE=drain (or concurrent)
set -eu
UNLIMITED="--rate_key 0 --rate_account 0 --max_conns_per_ip 0"
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
N=${N:-200000}
RATE=${RATE:-50}
# drain: the campaign is accepted first, then drains while the transactional
# messages go; concurrent: they go while it is accepted and drains
MODE=${MODE:-drain}
NOWHERE=${NOWHERE_PORT:-12877}   # nothing listens there
PORT=${PORT:-18580}
SIM_SMPP=127.0.0.1:${SIM_PORT:-12876}
SIM_HTTP=127.0.0.1:${SIM_HTTP_PORT:-18590}
URL=http://127.0.0.1:$PORT
ADMIN=bench-admin-key
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
make --no-print-directory all >/dev/null

start() {
  stop
  rm -rf "$work/data"; mkdir -p "$work/data"
  bin/kaskad-sim --smpp "$SIM_SMPP" --http "$SIM_HTTP" >"$work/sim.log" 2>&1 &
  SIM=$!
  KASKAD_ADMIN_KEY=$ADMIN ${KASKAD_BIN:-bin/kaskad} --http 127.0.0.1:$PORT --data "$work/data" $UNLIMITED \
    --log-level warn >"$work/kaskad.log" 2>&1 &
  KK=$!
  for _ in $(seq 200); do curl -sf $URL/healthz >/dev/null && curl -sf http://$SIM_HTTP/stats >/dev/null && break; sleep 0.05; done
  local a="Authorization: Bearer $ADMIN"
  ROUTE="{\"name\":\"sim\",\"host\":\"${SIM_SMPP%:*}\",\"port\":${SIM_SMPP##*:},\"system_id\":\"bench\",\"sessions\":2,\"window\":200}"
  # MODE=drain: the route points nowhere while the campaign is accepted
  local r=$ROUTE
  [ "$MODE" = drain ] && r=${ROUTE/${SIM_SMPP##*:}/$NOWHERE}
  curl -sf -XPUT -H "$a" $URL/v1/routes/sim -d "$r" >/dev/null
  local acc; acc=$(curl -sf -XPOST -H "$a" $URL/v1/accounts -d '{"name":"bench","senders":["KASKAD"]}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  KEY=$(curl -sf -XPOST -H "$a" $URL/v1/accounts/$acc/keys | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
  # the campaign is advertising: no quiet hours, whatever the time of day
  curl -sf -XPUT -H "Authorization: Bearer $KEY" $URL/v1/policy -d '{"quiet_hours":null}' >/dev/null
  [ "$MODE" = drain ] && return
  for _ in $(seq 200); do curl -sf -H "$a" $URL/v1/routes/sim | grep -q '"bound_ok":true' && break; sleep 0.05; done
}
stop() {
  [ -n "${KK:-}" ] && kill -TERM "$KK" 2>/dev/null && wait "$KK" 2>/dev/null || true
  [ -n "${SIM:-}" ] && kill -TERM "$SIM" 2>/dev/null && wait "$SIM" 2>/dev/null || true
  KK= SIM=
}
jfield() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
summary() {  # median [min-max] of the arguments
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%s [%s–%s]", m, a[1], a[NR]}'
}

declare -A res
for run in $(seq "$RUNS"); do
  start
  extra=()
  [ "$MODE" = drain ] && extra=(--admin "$ADMIN" --route "$ROUTE")
  out=$(node bench/lanes.mjs --url $URL --key "$KEY" --sim http://$SIM_HTTP --n "$N" --rate "$RATE" "${extra[@]}") || {
    echo "run $run failed; kaskad's and the simulator's last lines:" >&2
    tail -n 30 "$work/kaskad.log" "$work/sim.log" >&2
    exit 1
  }
  echo "run $run: $out" >&2
  for f in tx_p50_ms tx_p99_ms tx_n bulk_p50_ms bulk_p99_ms bulk_per_s drain_s insert_wait_p50_ms insert_wait_p99_ms commit_mean_ms batch_mean; do
    res[$f]+="$(echo "$out" | jfield $f) "
  done
done
stop
echo
echo "mode $MODE; machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); $RUNS runs, median [min–max]"
printf '| figure | value |\n| --- | --- |\n'
for f in "tx_p50_ms:transactional accept → submit_sm p50 ms ($RATE/s)" "tx_p99_ms:transactional accept → submit_sm p99 ms" \
         "tx_n:transactional messages measured" "bulk_p50_ms:bulk accept → submit_sm p50 ms (sampled)" \
         "bulk_p99_ms:bulk accept → submit_sm p99 ms (sampled)" "bulk_per_s:bulk drained msg/s ($N)" "drain_s:seconds until the bulk drained" \
         "insert_wait_p50_ms:stream insert queued → committed p50 ms (bucket bound)" "insert_wait_p99_ms:stream insert queued → committed p99 ms (bucket bound)" \
         "commit_mean_ms:store commit mean ms (while draining)" "batch_mean:operations per commit (mean)"; do
  k=${f%%:*}
  # shellcheck disable=SC2086
  printf '| %s | %s |\n' "${f#*:}" "$(summary ${res[$k]})"
done
