#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS on a copy of its corpus,
# FUZZ_JOBS targets at a time (default: one per core; each target is one
# process on one core, so each still gets its FUZZ_SECONDS of a whole core).
# Prints "ok - fuzz NAME" or "not ok - fuzz NAME" (with the tail of its log)
# per target, in the order given.
set -u
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}

# One target: its result lines into build/fuzz/NAME.result.
fuzz_one() {
  local name=$1 work=build/fuzz/run/$1 res=build/fuzz/$1.result
  rm -rf "$work"; mkdir -p "$work"
  [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
  if build/fuzz/libfuzz_"$name" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
       -artifact_prefix=build/fuzz/"$name"- "$work" >build/fuzz/"$name".log 2>&1; then
    echo "ok - fuzz $name ($(grep -o 'stat::number_of_executed_units: [0-9]*' build/fuzz/"$name".log | awk '{print $2}') runs)" >"$res"
  else
    { echo "not ok - fuzz $name"; tail -n 40 build/fuzz/"$name".log; } >"$res"
  fi
}

mkdir -p build/fuzz
for name in "$@"; do rm -f build/fuzz/"$name".result; done
running=0
for name in "$@"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  fuzz_one "$name" &
  running=$((running + 1))
done
wait

rc=0
for name in "$@"; do
  if [ -f build/fuzz/"$name".result ]; then
    cat build/fuzz/"$name".result
    head -n 1 build/fuzz/"$name".result | grep -q '^ok' || rc=1
  else
    echo "not ok - fuzz $name"; echo "(no result: the run was cut short)"; rc=1
  fi
done
exit $rc
