#!/usr/bin/env bash
# The campaign benchmark: N contacts imported, one campaign over them
# (VK -> Viber -> SMS against the simulator, no window, no rate); prints
# planning time, messages created and cascade steps per second, report
# latency p50/p99 during the run and kaskad's peak RSS (targets: planned in
# <= 10 s, >= 10,000 steps/s, report <= 50 ms, peak RSS <= 512 MiB).
#   N=1000000 bench/campaign.sh     # the full run, on a quiet machine
#   N=100000 bench/campaign.sh      # quicker
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory all >/dev/null
node bench/campaign.mjs --n "${N:-1000000}" --sync "${SYNC:-normal}"
