#!/usr/bin/env bash
# Kannel and kaskad in the same run, against the same simulator, measured the
# same way: messages/s from the first HTTP request until kaskad-sim has had a
# delivery receipt acknowledged (deliver_sm_resp) for every message.
#
#   bench/kannel.sh                         RUNS=3 N=20000
#   RUNS=1 N=5000 bench/kannel.sh           quicker
#
# Systems, each on a fresh simulator and an empty data/spool folder per run:
#   kaskad sync=full, kaskad sync=normal    route of 2 sessions, window 200
#   Kannel (Debian kannel: bearerbox + smsbox)  sendsms -> bearerbox with its
#           file store -> 2 SMPP transceiver sessions (instances = 2),
#           max-pending-submits 200; dlr-mask=3 with a dlr-url answered by
#           the loader (bench/kannel.conf.in, bench/kannel-load.mjs)
# Load (bench/kannel-load.mjs): one message per request with CONC (64) at once
# for both; kaskad also with batches of 500, 4 at once. Every figure is run
# with the simulator accepting everything and with it answering
# ESME_RTHROTTLED to 1% of submits. A Kannel run stops after KANNEL_TIMEOUT
# seconds (default 300); its figure is then the receipts acknowledged by then
# per second, marked with *.
#
# Settings (environment): RUNS, N, CONC, KANNEL_TIMEOUT, KANNEL_RESEND_FREQ
# (Kannel's sms-resend-freq, default 60 as in Kannel), and the ports
# PORT (kaskad HTTP, 19480), SIM_PORT (13776), SIM_HTTP_PORT (19490),
# KANNEL_PORT (first of three: admin, box, sendsms; 13300), SINK_PORT (19495).
set -eu
# Benchmarks measure kaskad, not its abuse controls: no rate limits, and no
# limit on connections from one address (the load comes from 127.0.0.1).
UNLIMITED="--rate_key 0 --rate_account 0 --max_conns_per_ip 0"
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
N=${N:-20000}
CONC=${CONC:-64}
KANNEL_TIMEOUT=${KANNEL_TIMEOUT:-300}
KANNEL_RESEND_FREQ=${KANNEL_RESEND_FREQ:-60}
PORT=${PORT:-19480}
SIM_PORT=${SIM_PORT:-13776}
SIM_HTTP=127.0.0.1:${SIM_HTTP_PORT:-19490}
KP=${KANNEL_PORT:-13300}
SINK_PORT=${SINK_PORT:-19495}
URL=http://127.0.0.1:$PORT
ADMIN=bench-admin-key
SESSIONS=2 WINDOW=200
PATH=$PATH:/usr/sbin
for b in bearerbox smsbox node curl; do
  command -v $b >/dev/null || { echo "kannel.sh: $b not found (Debian: apt-get install kannel)" >&2; exit 1; }
done

work=$(mktemp -d)
SIM='' KK='' BB='' SB=''
cleanup() { stop; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
make --no-print-directory all >/dev/null

ends() {  # SIGTERM, then SIGKILL after 10 s
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
stop() {
  ends "$SB"; ends "$BB"; ends "$KK"; ends "$SIM"
  SIM='' KK='' BB='' SB=''
}
wait_url() {  # $1 = URL that answers once the process is ready
  for _ in $(seq 200); do curl -sf "$1" >/dev/null && return 0; sleep 0.05; done
  echo "kannel.sh: $1 did not answer" >&2; return 1
}
start_sim() {  # $1 = knobs JSON
  stop
  bin/kaskad-sim --smpp 127.0.0.1:$SIM_PORT --http $SIM_HTTP --log-level warn --knobs "$1" >"$work/sim.log" 2>&1 &
  SIM=$!
  wait_url http://$SIM_HTTP/stats
}
start_kaskad() {  # $1 = sync mode
  rm -rf "$work/data"; mkdir -p "$work/data"
  KASKAD_ADMIN_KEY=$ADMIN bin/kaskad --http 127.0.0.1:$PORT --data "$work/data" --sync "$1" $UNLIMITED \
    --log-level warn >"$work/kaskad.log" 2>&1 &
  KK=$!
  wait_url $URL/healthz
  local a="Authorization: Bearer $ADMIN"
  curl -sf -XPUT -H "$a" $URL/v1/routes/sim -d "{\"host\":\"127.0.0.1\",\"port\":$SIM_PORT,\"system_id\":\"bench\",\"sessions\":$SESSIONS,\"window\":$WINDOW}" >/dev/null
  local acc; acc=$(curl -sf -XPOST -H "$a" $URL/v1/accounts -d '{"name":"bench","senders":["KASKAD"]}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  KEY=$(curl -sf -XPOST -H "$a" $URL/v1/accounts/$acc/keys | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
  for _ in $(seq 200); do curl -sf -H "$a" $URL/v1/routes/sim | grep -q '"bound_ok":true' && return 0; sleep 0.05; done
  echo "kannel.sh: kaskad's route did not bind" >&2; return 1
}
start_kannel() {
  local d=$work/kannel
  rm -rf "$d"; mkdir -p "$d"
  sed -e "s|@DIR@|$d|g; s|@ADMIN_PORT@|$KP|; s|@SMSBOX_PORT@|$((KP + 1))|g; s|@SENDSMS_PORT@|$((KP + 2))|" \
      -e "s|@SIM_HOST@|127.0.0.1|; s|@SIM_PORT@|$SIM_PORT|; s|@SESSIONS@|$SESSIONS|; s|@WINDOW@|$WINDOW|" \
      -e "s|@RESEND_FREQ@|$KANNEL_RESEND_FREQ|" bench/kannel.conf.in >"$d/kannel.conf"
  # -v 2: warnings and worse on stderr (the default, debug, costs a lot)
  bearerbox -v 2 "$d/kannel.conf" >"$d/bearerbox.out" 2>&1 &
  BB=$!
  wait_url "http://127.0.0.1:$KP/status.txt?password=bench"
  smsbox -v 2 "$d/kannel.conf" >"$d/smsbox.out" 2>&1 &
  SB=$!
  # ready when smsbox is connected and every SMPP session is bound
  local st
  for _ in $(seq 200); do
    st=$(curl -sf "http://127.0.0.1:$KP/status.txt?password=bench" || true)
    if echo "$st" | grep -q 'smsbox:' && [ "$(curl -sf http://$SIM_HTTP/stats | jfield sessions)" = "$SESSIONS" ] &&
       curl -s -o /dev/null "http://127.0.0.1:$((KP + 2))/"; then return 0; fi
    sleep 0.05
  done
  echo "kannel.sh: Kannel did not come up; see $d" >&2; return 1
}
jfield() { sed -n "s/.*\"$1\":\([0-9.a-z]*\).*/\1/p"; }
load() {  # $1 = mode, then options
  local m=$1; shift
  node bench/kannel-load.mjs "$m" --sim http://$SIM_HTTP --n "$N" --conc "$CONC" --sink "$SINK_PORT" "$@"
}
summary() {  # median [min–max]
  printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%s [%s–%s]", m, a[1], a[NR]}'
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ---- check that Kannel really sends through the simulator and gets receipts ----
start_sim '{}'
start_kannel
out=$(N=1 load kannel --url http://127.0.0.1:$((KP + 2)) --timeout 20)
sub=$(curl -sf "http://$SIM_HTTP/submits?limit=1")
if [ "$(echo "$out" | jfield complete)" != true ] || [ "$(echo "$out" | jfield dlr_callbacks)" != 1 ] ||
   ! echo "$sub" | grep -q '"system_id":"kannel".*"registered_delivery":1'; then
  echo "kannel.sh: Kannel check failed: $out $sub" >&2; exit 1
fi
echo "Kannel check: one message submitted ($(echo "$sub" | sed -n 's/.*"dest_addr":"\([^"]*\)".*"status":"\([^"]*\)".*"outcome":"\([^"]*\)".*/to \1, \2, \3/p')), receipt acknowledged, dlr-url called" >&2

declare -A res acc
run() {  # $1 = result key, $2 = mode, then options
  local k=$1 m=$2 o; shift 2
  o=$(load "$m" "$@")
  local r; r=$(echo "$o" | jfield e2e_per_s)
  [ "$(echo "$o" | jfield complete)" = true ] || r="$r*"
  res[$k]+="$r "; acc[$k]+="$(echo "$o" | jfield accepted_per_s) "
  echo "  $k: $o" >&2
}
for run in $(seq "$RUNS"); do
  for thr in 0 0.01; do
    knobs="{\"throttle\":$thr}"
    for sync in full normal; do
      start_sim "$knobs"; start_kaskad $sync; run "$sync,single,$thr" kaskad-single --url $URL --key "$KEY" --timeout 300
      start_sim "$knobs"; start_kaskad $sync; run "$sync,batch,$thr" kaskad-batch --url $URL --key "$KEY" --timeout 300
    done
    start_sim "$knobs"; start_kannel; run "kannel,single,$thr" kannel --url http://127.0.0.1:$((KP + 2)) --timeout "$KANNEL_TIMEOUT"
    stop
  done
  echo "run $run of $RUNS done" >&2
done

# ---- table ----
fig() {  # $1 = key: median [min–max], * kept
  # shellcheck disable=SC2086
  summary ${res[$1]//\*/}
  case "${res[$1]}" in *\**) printf ' *' ;; esac
}
ratio() {  # $1, $2 = keys: per-run ratio of $1 to $2, median [min–max]
  local a b r=() i
  read -ra a <<<"${res[$1]//\*/}"; read -ra b <<<"${res[$2]//\*/}"
  for i in "${!a[@]}"; do r+=("$(awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN { printf "%.1f", x / y }')"); done
  summary "${r[@]}" | sed 's/^/×/'
}
kept() {  # $1 = system: median throttled / median unthrottled, in %
  awk -v x="$(median ${res[$1,0.01]//\*/})" -v y="$(median ${res[$1,0]//\*/})" 'BEGIN { printf "%d %%", 100 * x / y }'
}
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "Kannel $(dpkg-query -W -f='${Version}' kannel 2>/dev/null || echo '?'); N=$N, $RUNS runs, median [min–max]; end-to-end = first request until the simulator has every receipt acknowledged"
echo
printf '| figure | kaskad sync=full | kaskad sync=normal | Kannel | kaskad full / Kannel |\n| --- | --- | --- | --- | --- |\n'
for thr in 0 0.01; do
  t=""; [ "$thr" = 0 ] || t=", 1% ESME_RTHROTTLED"
  printf '| end-to-end msg/s, one message per request (%s at once)%s | %s | %s | %s | %s |\n' "$CONC" "$t" \
    "$(fig full,single,$thr)" "$(fig normal,single,$thr)" "$(fig kannel,single,$thr)" "$(ratio full,single,$thr kannel,single,$thr)"
  printf '| end-to-end msg/s, kaskad batches of 500 (Kannel one per request)%s | %s | %s | %s | %s |\n' "$t" \
    "$(fig full,batch,$thr)" "$(fig normal,batch,$thr)" "$(fig kannel,single,$thr)" "$(ratio full,batch,$thr kannel,single,$thr)"
done
printf '| rate kept under 1%% ESME_RTHROTTLED, one per request | %s | %s | %s | |\n' "$(kept full,single)" "$(kept normal,single)" "$(kept kannel,single)"
printf '| rate kept under 1%% ESME_RTHROTTLED, batches | %s | %s | | |\n' "$(kept full,batch)" "$(kept normal,batch)"
# shellcheck disable=SC2086
printf '| HTTP accept msg/s, one message per request | %s | %s | %s | |\n' \
  "$(summary ${acc[full,single,0]})" "$(summary ${acc[normal,single,0]})" "$(summary ${acc[kannel,single,0]})"
case "${res[*]}" in *\**) echo; echo "* a run stopped after ${KANNEL_TIMEOUT} s: receipts acknowledged by then per second" ;; esac
