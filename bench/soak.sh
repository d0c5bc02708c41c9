#!/usr/bin/env bash
# Soak: does kaskad's memory stay flat under steady load?
#
#   bench/soak.sh                          10 minutes at 2,000 msg/s
#   SOAK_SECONDS=120 RATE=1000 bench/soak.sh
#
# Starts a fresh simulator and a fresh kaskad (release build, sync=full, route
# of 2 sessions, window 200) like bench/run.sh, then posts RATE messages/s in
# batches of BATCH (a paced loader: batch i leaves at i * BATCH / RATE s, at
# most 16 in flight) for SOAK_SECONDS, receipts flowing back all the while.
# kaskad's VmRSS (and RssAnon) from /proc is sampled every SAMPLE seconds.
# Prints the samples, RSS at 1 minute, at the end and the largest, the growth
# from minute 1 to the end and over the second half, and messages sent /
# accepted / delivered.
#
# Settings (environment): SOAK_SECONDS (600), RATE (2000), BATCH (100),
# SAMPLE (10), PORT (kaskad HTTP, 19580), SIM_PORT (13876), SIM_HTTP_PORT (19590).
set -eu
# Benchmarks measure kaskad, not its abuse controls: no rate limits, and no
# limit on connections from one address (the load comes from 127.0.0.1).
UNLIMITED="--rate_key 0 --rate_account 0 --max_conns_per_ip 0"
cd "$(dirname "$0")/.."
SOAK_SECONDS=${SOAK_SECONDS:-600}
RATE=${RATE:-2000}
BATCH=${BATCH:-100}
SAMPLE=${SAMPLE:-10}
PORT=${PORT:-19580}
SIM_SMPP=127.0.0.1:${SIM_PORT:-13876}
SIM_HTTP=127.0.0.1:${SIM_HTTP_PORT:-19590}
URL=http://127.0.0.1:$PORT
ADMIN=bench-admin-key
work=$(mktemp -d)
SIM='' KK='' LOAD=''
ends() {  # SIGTERM, then SIGKILL after 15 s
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() { ends "$LOAD"; ends "$KK"; ends "$SIM"; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
make --no-print-directory all >/dev/null

mkdir -p "$work/data"
bin/kaskad-sim --smpp "$SIM_SMPP" --http "$SIM_HTTP" --log-level warn >"$work/sim.log" 2>&1 &
SIM=$!
KASKAD_ADMIN_KEY=$ADMIN bin/kaskad --http 127.0.0.1:$PORT --data "$work/data" --sync full $UNLIMITED \
  --log-level warn >"$work/kaskad.log" 2>&1 &
KK=$!
for _ in $(seq 200); do curl -sf $URL/healthz >/dev/null && curl -sf "http://$SIM_HTTP/stats" >/dev/null && break; sleep 0.05; done
a="Authorization: Bearer $ADMIN"
curl -sf -XPUT -H "$a" $URL/v1/routes/sim -d "{\"host\":\"${SIM_SMPP%:*}\",\"port\":${SIM_SMPP##*:},\"system_id\":\"bench\",\"sessions\":2,\"window\":200}" >/dev/null
acc=$(curl -sf -XPOST -H "$a" $URL/v1/accounts -d '{"name":"soak","senders":["KASKAD"]}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
KEY=$(curl -sf -XPOST -H "$a" $URL/v1/accounts/"$acc"/keys | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
for _ in $(seq 200); do curl -sf -H "$a" $URL/v1/routes/sim | grep -q '"bound_ok":true' && break; sleep 0.05; done
rss() { awk -v f="$1:" '$1 == f {print $2}' /proc/"$KK"/status; }
echo "kaskad pid $KK, RSS at start $(rss VmRSS) kB; $RATE msg/s in batches of $BATCH for $SOAK_SECONDS s" >&2

# The paced loader (Node, no dependencies); prints one JSON line at the end.
URL=$URL KEY=$KEY RATE=$RATE BATCH=$BATCH SECONDS_=$SOAK_SECONDS SIM=http://$SIM_HTTP node - >"$work/load.json" <<'EOF' &
const http = require('node:http');
const { URL: url, KEY: key, SIM: sim } = process.env;
const rate = Number(process.env.RATE), batch = Number(process.env.BATCH), secs = Number(process.env.SECONDS_);
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function request(method, u, body) {
  return new Promise((resolve, reject) => {
    const p = new URL(u);
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ method, host: p.hostname, port: p.port, path: p.pathname + p.search, agent,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json',
                 ...(data ? { 'Content-Length': data.length } : {}) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}
async function delivered() {
  const r = await request('GET', `${url}/metrics`);
  let sum = 0;
  for (const line of r.body.split('\n'))
    if (line.startsWith('kaskad_messages_delivered_total')) sum += Number(line.split(' ').pop());
  return sum;
}
(async () => {
  const tag = Math.random().toString(36).slice(2, 8);
  const interval = 1000 * batch / rate, total = Math.floor(secs * rate / batch);
  let sent = 0, accepted = 0, errors = 0, inflight = 0, late = 0;
  const lat = [];
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 0) await sleep(wait); else if (wait < -1000) late++;
    while (inflight >= 16) await sleep(1);
    const messages = [];
    for (let j = 0; j < batch; j++) {
      const n = i * batch + j;
      messages.push({ to: `+7916${String(n % 1e6).padStart(6, '0')}5`, text: `soak ${tag} ${n}`, sender: 'KASKAD' });
    }
    sent += batch; inflight++;
    const ts = performance.now();
    request('POST', `${url}/v1/messages/batch`, { messages }).then((r) => {
      if (r.status === 202) accepted += JSON.parse(r.body).accepted; else errors++;
      lat.push(performance.now() - ts);
    }, () => { errors++; }).finally(() => { inflight--; });
  }
  while (inflight > 0) await sleep(5);
  const tSent = performance.now();
  let d = 0;
  for (let k = 0; k < 600 && (d = await delivered()) < accepted; k++) await sleep(100);
  const acked = JSON.parse((await request('GET', `${sim}/stats`)).body).receipts_acked;
  lat.sort((a, b) => a - b);
  const q = (p) => Math.round(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]);
  console.log(JSON.stringify({ sent, accepted, errors, delivered: d, receipts_acked: acked,
    seconds: Number(((tSent - t0) / 1000).toFixed(1)), batches_late_over_1s: late,
    batch_ms_p50: q(0.5), batch_ms_p99: q(0.99), batch_ms_max: Math.round(lat[lat.length - 1]) }));
  process.exit(0);
})().catch((e) => { console.error(e.message); process.exit(1); });
EOF
LOAD=$!

t0=$(date +%s)
: >"$work/rss"
next=$t0
while kill -0 "$LOAD" 2>/dev/null; do
  now=$(date +%s)
  if [ "$now" -ge "$next" ]; then
    echo "$((now - t0)) $(rss VmRSS) $(rss RssAnon)" >>"$work/rss"
    next=$((next + SAMPLE))
  fi
  sleep 0.5
done
wait "$LOAD" || { echo "soak.sh: the loader failed" >&2; exit 1; }
LOAD=''
now=$(date +%s); echo "$((now - t0)) $(rss VmRSS) $(rss RssAnon)" >>"$work/rss"
hwm=$(rss VmHWM)
db=$(du -sk "$work/data" | cut -f1)

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "samples (s: VmRSS / RssAnon, MiB):"
awk '{printf "%s%d: %.1f / %.1f", (NR > 1 ? (NR % 6 == 1 ? "\n" : ", ") : ""), $1, $2 / 1024, $3 / 1024} END {print ""}' "$work/rss"
awk -v hwm="$hwm" -v db="$db" -v load="$(cat "$work/load.json")" '
  { t[NR] = $1; r[NR] = $2; a[NR] = $3; if ($2 > max) max = $2 }
  END {
    m = 1; for (i = 1; i <= NR; i++) if (t[i] <= 60) m = i   # the sample at 1 minute
    printf "\n| figure | value |\n| --- | --- |\n"
    printf "| VmRSS at %d s | %.1f MiB (anon %.1f) |\n", t[m], r[m] / 1024, a[m] / 1024
    printf "| VmRSS at the end (%d s) | %.1f MiB (anon %.1f) |\n", t[NR], r[NR] / 1024, a[NR] / 1024
    printf "| largest VmRSS sample / VmHWM | %.1f / %.1f MiB |\n", max / 1024, hwm / 1024
    printf "| growth from %d s to the end | %+.1f MiB (%+.1f %%), anon %+.1f MiB |\n", t[m], (r[NR] - r[m]) / 1024, 100 * (r[NR] - r[m]) / r[m], (a[NR] - a[m]) / 1024
    h = 1; for (i = 1; i <= NR; i++) if (t[i] <= t[NR] / 2) h = i   # the sample at half time
    printf "| growth over the second half (%d s to the end) | %+.1f MiB, anon %+.1f MiB |\n", t[h], (r[NR] - r[h]) / 1024, (a[NR] - a[h]) / 1024
    printf "| data folder at the end | %.0f MiB |\n", db / 1024
    printf "\nloader: %s\n", load
  }' "$work/rss"
