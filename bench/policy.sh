#!/usr/bin/env bash
# The policy chain's cost: accept rate with every rule on vs off in the same
# run (target: "on" at most 10 % slower), the frequency caps holding
# 1,000,000 phones. One JSON line per run (see bench/policy.mjs).
#   RUNS=1 N=1000000 CHUNK=50000 bench/policy.sh
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory all >/dev/null
for _ in $(seq "${RUNS:-1}"); do
  node bench/policy.mjs --n "${N:-1000000}" --chunk "${CHUNK:-50000}"
done
