#!/usr/bin/env bash
# make run: starts the provider simulator and kaskad on SQLite under var/,
# with a demo account, an API key, the SMS route "sim" and every messenger
# channel and e-mail pointed at the simulator (operator defaults), then prints
# how to use them. Ctrl-C stops both.
set -eu
cd "$(dirname "$0")/.."
# The keys and the database are the operator's alone (files 0600, var 0700).
umask 077
mkdir -p var
chmod 700 var
HTTP=${KASKAD_HTTP:-127.0.0.1:8080}
SIM_SMPP=${SIM_SMPP:-127.0.0.1:2776}
SIM_HTTP=${SIM_HTTP:-127.0.0.1:8090}
SIM_SMTP=${SIM_SMTP:-127.0.0.1:2526}
ADMIN_FILE=var/admin.key
[ -s "$ADMIN_FILE" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ADMIN_FILE"
chmod 600 "$ADMIN_FILE"
export KASKAD_ADMIN_KEY=${KASKAD_ADMIN_KEY:-$(cat "$ADMIN_FILE")}

bin/kaskad-sim --smpp "$SIM_SMPP" --http "$SIM_HTTP" --smtp "$SIM_SMTP" \
  --channels '{"vk":{"reach":0.6,"read":0.7,"read_ms":[2000,8000]},"viber":{"reach":0.5,"read":0.5}}' \
  >var/sim.log 2>&1 &
sim=$!
# The simulator listens on loopback, which kaskad refuses to connect to
# unless the operator allows it.
ALLOW=${KASKAD_OUTBOUND_ALLOW:-${SIM_HTTP%:*}/32,${SIM_SMTP%:*}/32}
# The numbering register (operator, region and time zone of a number), when
# it is beside the project; KASKAD_NUMBERING names another folder.
NUMBERING=${KASKAD_NUMBERING:-../shared/data/numbering-ru}
[ -f "$NUMBERING/DEF-9xx.csv" ] || NUMBERING=
bin/kaskad --http "$HTTP" --data var --outbound_allow "$ALLOW" ${NUMBERING:+--numbering "$NUMBERING"} 2> >(tee -a var/kaskad.log >&2) &
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
  acc=$(api -X POST "http://$HTTP/v1/accounts" -d '{"name":"Demo shop","senders":["KASKAD"]}' | field id)
  api -X POST "http://$HTTP/v1/accounts/$acc/keys" | field key >var/demo.key
fi
chmod 600 var/demo.key
KEY=$(cat var/demo.key)
# A demo account made before senders were registered gets the demo's sender too.
acc=$(curl -sf -H "Authorization: Bearer $KEY" "http://$HTTP/v1/account" | field id || true)
[ -z "$acc" ] || api -X PATCH "http://$HTTP/v1/accounts/$acc" -d '{"senders":["KASKAD"]}' >/dev/null || true

# Every channel's operator defaults point at the simulator; the simulator
# knows the same tokens, as a provider's console would.
S=http://$SIM_HTTP
put() { api -X PUT "http://$HTTP/v1/channels/$1" -d "$2" >/dev/null; }
put vk "{\"base_url\":\"$S\",\"token\":\"demo-vk-token\",\"secret\":\"demo-vk-secret\",\"group_id\":1,\"confirmation\":\"demo-ok\"}"
put viber "{\"base_url\":\"$S\",\"token\":\"demo-viber-token\",\"sender\":\"Demo shop\"}"
put telegram "{\"base_url\":\"$S\",\"token\":\"100000:demo-telegram-token\",\"secret\":\"demo-tg-secret\"}"
put telegram_gateway "{\"base_url\":\"$S\",\"token\":\"demo-gateway-token\"}"
put whatsapp "{\"base_url\":\"$S\",\"token\":\"demo-wa-token\",\"secret\":\"demo-wa-secret\",\"phone_number_id\":\"100\",\"verify_token\":\"demo-verify\"}"
# The simulator's SMTP sink has no TLS: the URL says so.
put email "{\"smtp_url\":\"smtp://$SIM_SMTP/?tls=off\",\"from\":\"noreply@demo.test\",\"sender\":\"Demo shop\"}"
curl -sf -XPOST "$S/apps" -d "{\"channel\":\"vk\",\"token\":\"demo-vk-token\",\"secret\":\"demo-vk-secret\",\"group_id\":1,\"confirmation\":\"demo-ok\",\"callback_url\":\"http://$HTTP/v1/hooks/vk/default\"}" >/dev/null
curl -sf -XPOST "$S/apps" -d "{\"channel\":\"whatsapp\",\"token\":\"demo-wa-token\",\"secret\":\"demo-wa-secret\",\"phone_number_id\":\"100\",\"verify_token\":\"demo-verify\",\"callback_url\":\"http://$HTTP/v1/hooks/whatsapp/default\"}" >/dev/null
curl -sf -XPOST "$S/apps" -d '{"channel":"telegram_gateway","token":"demo-gateway-token"}' >/dev/null
api -X PUT "http://$HTTP/v1/prices" -d '{"prices":{"sms":3.5,"vk":0.5,"viber":1.2,"telegram":0,"telegram_gateway":0.9,"whatsapp":2.0,"email":0.05}}' >/dev/null
cat <<MSG

  kaskad is running; the simulator stands in for the SMS centre ($SIM_SMPP),
  VK, Viber, Telegram, WhatsApp (http://$SIM_HTTP) and an SMTP server ($SIM_SMTP)

  API:        http://$HTTP/v1/
  demo key:   $KEY
  admin key:  $KASKAD_ADMIN_KEY (in var/admin.key)

  Send an SMS:
    curl -s http://$HTTP/v1/messages -H "Authorization: Bearer $KEY" \\
      -d '{"to":"+79161234567","text":"Ваш код: 1234","sender":"KASKAD"}'
  Then read it:  curl -s http://$HTTP/v1/messages/<id> -H "Authorization: Bearer $KEY"

  A cascade: VK (wait until read, 10 s), then Viber (delivered, 10 s), then SMS:
    curl -s http://$HTTP/v1/messages -H "Authorization: Bearer $KEY" \\
      -d '{"to":"+79161234567","vk_id":"1001","text":"Заказ 1234 готов к выдаче",
           "cascade":[{"channel":"vk","wait":"read","timeout":"10s"},
                      {"channel":"viber","wait":"delivered","timeout":"10s"},
                      {"channel":"sms"}]}'
  Channels and their webhook URLs:  curl -s http://$HTTP/v1/channels -H "Authorization: Bearer $KEY"
  Metrics:       curl -s http://$HTTP/metrics

  Ctrl-C stops kaskad and the simulator.
MSG
wait $kk
