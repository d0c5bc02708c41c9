#!/usr/bin/env bash
# Benchmarks kaskad on this machine and prints a table of medians with ranges.
#   bench/run.sh            RUNS=3 runs of each figure, sync full and normal
# Figures:
#   accept/s single   wrk, 64 connections, one message per POST /v1/messages, 10 s
#   accept/s batch    wrk, 8 connections, 100 messages per POST /v1/messages/batch, 10 s
#   e2e msg/s         N messages (batches of 500) until kaskad has a DELIVRD receipt for each
#   e2e, 1% throttled the same with the simulator answering ESME_RTHROTTLED to 1% of submits
#   latency p50/p99   accept (created_at) -> submit_sm at the simulator, 100 msg/s for 20 s
#   bench/run.sh balance   accept/s of single POSTs (64 connections, 10 s) by a
#                     postpaid account and by a prepaid one (every message held
#                     against its balance), in the same kaskad each run, the
#                     order alternating; sync normal (SYNC=full for full)
# Every run starts a fresh simulator and a fresh kaskad on an empty data folder.
set -eu
# Benchmarks measure kaskad, not its abuse controls: no rate limits, and no
# limit on connections from one address (the load comes from 127.0.0.1).
UNLIMITED="--rate_key 0 --rate_account 0 --max_conns_per_ip 0"
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
N=${N:-50000}
PORT=${PORT:-18480}
SIM_SMPP=127.0.0.1:${SIM_PORT:-12776}
SIM_HTTP=127.0.0.1:${SIM_HTTP_PORT:-18490}
URL=http://127.0.0.1:$PORT
ADMIN=bench-admin-key
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
make --no-print-directory all >/dev/null

start() {  # $1 = sync mode, $2 = simulator config JSON
  stop
  rm -rf "$work/data"; mkdir -p "$work/data"
  bin/kaskad-sim --smpp "$SIM_SMPP" --http "$SIM_HTTP" --smtp 127.0.0.1:${SIM_SMTP_PORT:-2526} >"$work/sim.log" 2>&1 &
  SIM=$!
  KASKAD_ADMIN_KEY=$ADMIN bin/kaskad --http 127.0.0.1:$PORT --data "$work/data" --sync "$1" $UNLIMITED \
    --log-level warn >"$work/kaskad.log" 2>&1 &
  KK=$!
  for _ in $(seq 200); do curl -sf $URL/healthz >/dev/null && curl -sf http://$SIM_HTTP/stats >/dev/null && break; sleep 0.05; done
  curl -sf -XPOST http://$SIM_HTTP/config -d "$2" >/dev/null
  local a="Authorization: Bearer $ADMIN"
  curl -sf -XPUT -H "$a" $URL/v1/routes/sim -d "{\"host\":\"${SIM_SMPP%:*}\",\"port\":${SIM_SMPP##*:},\"system_id\":\"bench\",\"sessions\":2,\"window\":200}" >/dev/null
  local acc; acc=$(curl -sf -XPOST -H "$a" $URL/v1/accounts -d '{"name":"bench","senders":["KASKAD"]}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  KEY=$(curl -sf -XPOST -H "$a" $URL/v1/accounts/$acc/keys | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
  for _ in $(seq 200); do curl -sf -H "$a" $URL/v1/routes/sim | grep -q '"bound_ok":true' && break; sleep 0.05; done
}
stop() {
  [ -n "${KK:-}" ] && kill -TERM "$KK" 2>/dev/null && wait "$KK" 2>/dev/null || true
  [ -n "${SIM:-}" ] && kill -TERM "$SIM" 2>/dev/null && wait "$SIM" 2>/dev/null || true
  KK= SIM=
}
wrk_rate() {  # $1 = connections, $2 = batch size (0 = single); prints messages/s
  local r
  r=$(KEY=$KEY BATCH=$2 wrk -t2 -c"$1" -d10s -s bench/post.lua $URL | awk '/Requests\/sec/ {print $2}')
  awk -v r="$r" -v b="$2" 'BEGIN { printf "%d\n", (b > 0 ? r * b : r) }'
}
jfield() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
summary() {  # median [min-max] of the arguments
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%s [%s–%s]", m, a[1], a[NR]}'
}

declare -A res
if [ "${1:-}" = balance ]; then
  a="Authorization: Bearer $ADMIN"
  bsync=${SYNC:-normal}
  for run in $(seq "$RUNS"); do
    start "$bsync" '{}'
    post=$KEY
    curl -sf -XPUT -H "$a" $URL/v1/prices -d '{"prices":{"sms":0.01}}' >/dev/null
    acc=$(curl -sf -XPOST -H "$a" $URL/v1/accounts -d '{"name":"prepaid","senders":["KASKAD"]}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
    pre=$(curl -sf -XPOST -H "$a" $URL/v1/accounts/$acc/keys | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
    curl -sf -XPATCH -H "$a" $URL/v1/accounts/$acc -d '{"billing":"prepaid"}' >/dev/null
    curl -sf -XPOST -H "$a" $URL/v1/accounts/$acc/balance -d '{"amount":100000000}' >/dev/null
    order="post pre"; [ $((run % 2)) -eq 0 ] && order="pre post"
    for who in $order; do
      k=$post; [ $who = pre ] && k=$pre
      out=$(node bench/load.mjs accept --url $URL --key "$k" --conc 64 --seconds 10)
      [ "$(echo "$out" | jfield refused)" = 0 ] || { echo "refused sends: $out" >&2; exit 1; }
      res[$who]+="$(echo "$out" | jfield accepted_per_s) "
    done
    echo "balance run $run ($order): postpaid $(echo ${res[post]} | awk '{print $NF}'), prepaid $(echo ${res[pre]} | awk '{print $NF}')" >&2
  done
  stop
  echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the end; $RUNS runs, median [min–max]"
  printf '| accepted msg/s, single POST, sync=%s | postpaid | prepaid |\n| --- | --- | --- |\n' "$bsync"
  # shellcheck disable=SC2086
  printf '| | %s | %s |\n' "$(summary ${res[post]})" "$(summary ${res[pre]})"
  exit 0
fi
for sync in full normal; do
  for run in $(seq "$RUNS"); do
    start $sync '{}';               res[$sync,single]+="$(wrk_rate 64 0) "
    start $sync '{}';               res[$sync,batch]+="$(wrk_rate 8 100) "
    start $sync '{}';               res[$sync,e2e]+="$(node bench/load.mjs e2e --url $URL --key "$KEY" --n "$N" | jfield e2e_per_s) "
    start $sync '{"throttle":0.01}'; res[$sync,thr]+="$(node bench/load.mjs e2e --url $URL --key "$KEY" --n "$N" | jfield e2e_per_s) "
    start $sync '{}'
    out=$(node bench/load.mjs latency --url $URL --key "$KEY" --sim http://$SIM_HTTP --rate 100 --seconds 20)
    res[$sync,p50]+="$(echo "$out" | jfield p50_ms) "; res[$sync,p99]+="$(echo "$out" | jfield p99_ms) "
    echo "sync=$sync run $run done" >&2
  done
done
stop
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); $RUNS runs, median [min–max]"
printf '| figure | sync=full | sync=normal |\n| --- | --- | --- |\n'
for f in "single:accepted msg/s, single POST" "batch:accepted msg/s, batch of 100" "e2e:end-to-end msg/s ($N, until every receipt)" \
         "thr:end-to-end msg/s, 1% ESME_RTHROTTLED" "p50:accept → submit_sm p50 ms (100 msg/s)" "p99:accept → submit_sm p99 ms (100 msg/s)"; do
  k=${f%%:*}
  # shellcheck disable=SC2086
  printf '| %s | %s | %s |\n' "${f#*:}" "$(summary ${res[full,$k]})" "$(summary ${res[normal,$k]})"
done
