#!/usr/bin/env bash
# make run: starts the SMSC simulator and kaskad on SQLite under var/, with a
# demo account, an API key and the route "sim", then prints how to use them.
# Ctrl-C stops both.
set -eu
cd "$(dirname "$0")/.."
mkdir -p var
HTTP=${KASKAD_HTTP:-127.0.0.1:8080}
SIM_SMPP=${SIM_SMPP:-127.0.0.1:2776}
SIM_HTTP=${SIM_HTTP:-127.0.0.1:8090}
ADMIN_FILE=var/admin.key
[ -s "$ADMIN_FILE" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ADMIN_FILE"
export KASKAD_ADMIN_KEY=${KASKAD_ADMIN_KEY:-$(cat "$ADMIN_FILE")}

bin/kaskad-sim --smpp "$SIM_SMPP" --http "$SIM_HTTP" >var/sim.log 2>&1 &
sim=$!
bin/kaskad --http "$HTTP" --data var 2> >(tee -a var/kaskad.log >&2) &
kk=$!
trap 'kill -TERM $kk $sim 2>/dev/null; wait $kk 2>/dev/null; exit 0' INT TERM
for _ in $(seq 100); do
  curl -sf "http://$HTTP/healthz" >/dev/null && break
  sleep 0.1
done
api() { curl -sf -H "Authorization: Bearer $KASKAD_ADMIN_KEY" -H 'Content-Type: application/json' "$@"; }
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
api -X PUT "http://$HTTP/v1/routes/sim" \
  -d "{\"host\":\"${SIM_SMPP%:*}\",\"port\":${SIM_SMPP##*:},\"system_id\":\"kaskad\",\"password\":\"demo\",\"sessions\":2,\"window\":100}" >/dev/null
if [ ! -s var/demo.key ]; then
  acc=$(api -X POST "http://$HTTP/v1/accounts" -d '{"name":"Demo shop"}' | field id)
  api -X POST "http://$HTTP/v1/accounts/$acc/keys" | field key >var/demo.key
fi
KEY=$(cat var/demo.key)
cat <<MSG

  kaskad is running (simulated SMS centre on $SIM_SMPP, its counters on http://$SIM_HTTP/stats)

  API:        http://$HTTP/v1/
  demo key:   $KEY
  admin key:  $KASKAD_ADMIN_KEY (in var/admin.key)

  Send an SMS:
    curl -s http://$HTTP/v1/messages -H "Authorization: Bearer $KEY" \\
      -d '{"to":"+79161234567","text":"Ваш код: 1234","sender":"KASKAD"}'
  Then read it:  curl -s http://$HTTP/v1/messages/<id> -H "Authorization: Bearer $KEY"
  Metrics:       curl -s http://$HTTP/metrics

  Ctrl-C stops kaskad and the simulator.
MSG
wait $kk
