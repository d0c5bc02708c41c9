#!/usr/bin/env bash
# The cascade benchmark, RUNS times (default 3); prints medians [min–max].
#   RUNS=3 N=100000 PENDING=100000 RATE=10000 TIMEOUT=1s bench/cascade.sh
# Each run: bench/cascade.mjs (see its header) on a fresh simulator and kaskad.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
make --no-print-directory all >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$RUNS"); do
  node bench/cascade.mjs --n "${N:-100000}" --pending "${PENDING:-100000}" --rate "${RATE:-10000}" \
    --timeout "${TIMEOUT:-1s}" >>"$out"
done
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (k) => { const v = rows.map((r) => r[k]).sort((a, b) => a - b);
  return `${v[Math.floor((v.length - 1) / 2)]} [${v[0]}–${v[v.length - 1]}]`; };
const r0 = rows[0];
console.log(`cascade VK -> Viber -> SMS, ${r0.n} messages at ${r0.rate}/s, step timeouts ${r0.timeout}, ${rows.length} runs`);
for (const k of ["steps", "seconds", "steps_per_s", "steps_ended_while_posting_per_s", "vk_read",
                 "viber_delivered", "sms_started", "peak_rss_mib"]) console.log(`  ${k.padEnd(34)} ${med(k)}`);
console.log(`waiting cascades (VK step waiting an hour for a read)`);
for (const k of ["rss_10k_mib", "rss_pending_mib", "bytes_per_waiting_cascade"]) console.log(`  ${k.padEnd(34)} ${med(k)}`);
' "$out"
