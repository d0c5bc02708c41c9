#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS on a copy of its corpus.
# Prints "ok - fuzz NAME" or "not ok - fuzz NAME" per target.
set -u
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-30}
rc=0
for name in "$@"; do
  work=build/fuzz/run/$name
  rm -rf "$work"; mkdir -p "$work"
  [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
  if build/fuzz/libfuzz_"$name" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
       -artifact_prefix=build/fuzz/"$name"- "$work" >build/fuzz/"$name".log 2>&1; then
    echo "ok - fuzz $name ($(grep -o 'stat::number_of_executed_units: [0-9]*' build/fuzz/"$name".log | awk '{print $2}') runs)"
  else
    echo "not ok - fuzz $name"; tail -n 40 build/fuzz/"$name".log; rc=1
  fi
done
exit $rc
