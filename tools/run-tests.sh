#!/usr/bin/env bash
# Runs every test suite against the sanitizer build and prints one total line:
#   N passed, N failed
# Suites: C unit tests, the store's PostgreSQL unit tests on a private
# cluster (tools/pg-test.sh; not run without PostgreSQL, a failure under
# CI=true), fuzz corpus replays (one test per target), bounded
# libFuzzer runs when clang is present (FUZZ_SECONDS each, default 5; 0 to skip), end-to-end
# tests (node's test runner) on SQLite, and on PostgreSQL on the same private
# cluster (the files of PG_E2E), the two runs side by side. A suite that runs
# no test at all fails: an empty selection must not read as green.
#
# The time goes mostly to waiting (timers, simulators, the network, the
# stores' writers), so the phases overlap where they can: the cluster starts
# while the unit tests run; the unit tests run UNIT_JOBS at a time (default
# two per core; tests/unit/test_main.c, KK_TEST_JOBS), the PostgreSQL ones
# PG_UNIT_JOBS (default one per core); the release build
# (bin/) and the fuzz build (BUILD=fuzz) run in the background at idle CPU
# priority (SCHED_IDLE: they get only what the tests leave unused) from the
# start, each back at normal priority once it is waited for; the libFuzzer
# targets run one per core (tools/run-fuzz.sh). What is printed is the same
# as one after the other.
set -u
cd "$(dirname "$0")/.."
B=build/asan
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0
failed=0
log=build/test-logs
rm -rf "$log"
mkdir -p "$log"

# The end-to-end files given (default: all of tests/e2e), with node's test
# runner, into the log $1 (with KASKAD_E2E_STORE as the caller sets it).
e2e_exec() {
  local out=$1
  shift
  KASKAD_BIN=$B/kaskad KASKAD_SIM_BIN=$B/kaskad-sim \
    node --test --test-concurrency=1 --test-reporter=tap "${@:-tests/e2e/}" >"$out" 2>&1
}

# What the end-to-end log $1 says: its lines, its failures; adds to passed
# and failed.
e2e_tally() {
  local out=$1
  grep -E '^(not )?ok [0-9]+ - |^# (Subtest|pass|fail)' "$out" | grep -v '^# Subtest'
  if grep -q '^not ok' "$out"; then
    sed -n '/^not ok/,/^ok/p' "$out" | head -n 80
  fi
  local p f
  p=$(grep -E '^# pass [0-9]+' "$out" | tail -n 1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+' "$out" | tail -n 1 | awk '{print $3}')
  if [ -z "$p" ]; then
    echo "not ok - e2e runner crashed"; tail -n 40 "$out"; failed=$((failed + 1))
  elif [ "$p" = 0 ] && [ "${f:-0}" = 0 ]; then
    echo "not ok - no end-to-end test ran"; failed=$((failed + 1))
  else
    passed=$((passed + p)); failed=$((failed + ${f:-0}))
  fi
}

# The end-to-end files run on PostgreSQL too, each Kaskad on a database of its
# own (KASKAD_E2E_STORE, tests/e2e/lib/harness.mjs): every file but
# store_faults, which makes SQLite's own faults (a lock held on its file, the
# I/O-error hook of its writer); PostgreSQL's (a lost connection) are in
# tests/unit/test_store_pg.c.
PG_E2E=$(cd tests/e2e && ls *.test.mjs | sed 's/\.test\.mjs$//' | grep -vx store_faults | tr '\n' ' ')

[ -d node_modules ] || npm ci --silent --no-audit --no-fund >/dev/null 2>&1
e2e_done=0
cores=$(nproc 2>/dev/null || echo 2)
unit_jobs=${UNIT_JOBS:-$((2 * cores))}
# The PostgreSQL ones share the machine with the server: one per core.
pg_unit_jobs=${PG_UNIT_JOBS:-$cores}

# Builds that are not tests run in the background at idle CPU priority, one
# after the other: the release build (bin/: the nodes tests take bin/kaskad
# when it is there, so it is finished before the end-to-end tests start),
# then the fuzz build. Each leaves its status and log in
# $log/build-NAME.{rc,txt}. build_wait NAME waits for one at normal priority
# again (it is needed now) and, when it failed, says so with its log's tail.
idle() {
  if chrt --idle 0 true 2>/dev/null; then chrt --idle 0 "$@"; else nice -n 19 "$@"; fi
}
build_one() {
  local name=$1
  shift
  idle "$@" >"$log/build-$name.txt" 2>&1
  echo $? >"$log/build-$name.rc"
}
# The processes under pid $1, itself included.
tree() {
  echo "$1"
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree "$c"; done
}
# Waits for the release build once (its result in release_ok).
release_ok=
release_wait() {
  [ -n "$release_ok" ] && return 0
  if build_wait release "release build" >/dev/null; then release_ok=1; else release_ok=0; fi
}
build_wait() {
  while [ ! -f "$log/build-$1.rc" ]; do
    for p in $(tree "$builds"); do chrt --other -a -p 0 "$p" >/dev/null 2>&1; done
    sleep 1
  done
  [ "$(cat "$log/build-$1.rc")" = 0 ] && return 0
  echo "not ok - $2"; tail -n 40 "$log/build-$1.txt"
  return 1
}
fs=${FUZZ_SECONDS:-5}
fuzzing=0
if [ "$fs" != 0 ] && command -v clang >/dev/null 2>&1; then fuzzing=1; fi
(
  build_one release make --no-print-directory -j"$cores" all
  [ "$fuzzing" = 0 ] || build_one fuzz make --no-print-directory -j"$cores" fuzz-build
) &
builds=$!

# The PostgreSQL cluster starts while the unit tests run.
have_pg=0
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  have_pg=1
  export KASKAD_PG_STATE=build/pg-test-run.dir
  ( tools/pg-test.sh start >"$log/pg-url.txt" 2>"$log/pg-start.txt"; echo $? >"$log/pg-start.rc" ) &
  pg_start=$!
  trap 'wait $pg_start; tools/pg-test.sh stop >/dev/null 2>&1' EXIT
fi

echo "== unit tests"
# every one but the PostgreSQL ones, which run below against a cluster
if KK_TEST_JOBS=$unit_jobs "$B/unit-tests" -store_pg >"$log/unit.txt" 2>&1; then :; fi
cat "$log/unit.txt"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log/unit.txt" | tail -n 1)
if [ "$line" = "0 passed, 0 failed" ]; then
  echo "not ok - no unit test ran"
  failed=$((failed + 1))
elif [ -n "$line" ]; then
  passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
  failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
else
  echo "not ok - unit test runner crashed"
  failed=$((failed + 1))
fi

echo "== PostgreSQL"
# The store's PostgreSQL tests, on a private cluster started for them
# (tools/pg-test.sh) and stopped after. Without PostgreSQL they are not run,
# said in one line; under CI (CI=true) that is a failure: CI never skips them.
if [ "$have_pg" = 1 ]; then
  wait "$pg_start"
  pg_url=$(cat "$log/pg-url.txt")
  if [ "$(cat "$log/pg-start.rc")" = 0 ]; then
    if KK_TEST_JOBS=$pg_unit_jobs KASKAD_TEST_PG=$pg_url "$B/unit-tests" store_pg >"$log/unit-pg.txt" 2>&1; then :; fi
    cat "$log/unit-pg.txt"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log/unit-pg.txt" | tail -n 1)
    if [ -z "$line" ] || [ "$line" = "0 passed, 0 failed" ]; then
      echo "not ok - the PostgreSQL unit tests did not all run"
      failed=$((failed + 1))
    else
      passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
      failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
    fi
    # The two end-to-end runs go side by side: their tests mostly wait
    # (timers, the simulators, the network), one file at a time each.
    release_wait
    files=()
    for f in $PG_E2E; do files+=("tests/e2e/$f.test.mjs"); done
    e2e_exec "$log/e2e.txt" &
    sqlite_run=$!
    KASKAD_E2E_STORE=$pg_url e2e_exec "$log/e2e-pg.txt" "${files[@]}"
    wait "$sqlite_run"
    e2e_done=1
    echo "== end-to-end tests on PostgreSQL ($(echo $PG_E2E | wc -w) of $(ls tests/e2e/*.test.mjs | wc -l) files)"
    e2e_tally "$log/e2e-pg.txt"
    tools/pg-test.sh stop >/dev/null 2>&1
    trap - EXIT
  else
    echo "not ok - the PostgreSQL test cluster did not start"; tail -n 20 "$log/pg-start.txt"
    failed=$((failed + 1))
  fi
else
  echo "PostgreSQL tests not run: PostgreSQL is not installed (tools/deps.sh installs postgresql and libpq-dev)"
  if [ "${CI:-}" = true ]; then
    echo "not ok - CI must run the PostgreSQL tests"
    failed=$((failed + 1))
  fi
fi

echo "== fuzz corpora"
for r in "$B"/replay_*; do
  [ -x "$r" ] || continue
  name=${r##*/replay_}
  if "$r" "fuzz/corpus/$name" >"$log/replay_$name.txt" 2>&1; then
    echo "ok - corpus $name: $(tail -n 1 "$log/replay_$name.txt")"
    passed=$((passed + 1))
  else
    echo "not ok - corpus $name"; tail -n 30 "$log/replay_$name.txt"
    failed=$((failed + 1))
  fi
done

if [ "$fuzzing" = 1 ]; then
  echo "== fuzzing, ${fs}s per target"
  if build_wait fuzz "fuzz build" >"$log/fuzz.txt" &&
       make --no-print-directory fuzz-run FUZZ_SECONDS="$fs" >>"$log/fuzz.txt" 2>&1; then
    grep -E '^(ok|not ok)' "$log/fuzz.txt"
    passed=$((passed + $(grep -c '^ok' "$log/fuzz.txt")))
  else
    grep -E '^(ok|not ok)' "$log/fuzz.txt"; tail -n 40 "$log/fuzz.txt"
    passed=$((passed + $(grep -c '^ok' "$log/fuzz.txt")))
    n=$(grep -c '^not ok' "$log/fuzz.txt"); [ "$n" -gt 0 ] || n=1
    failed=$((failed + n))
  fi
fi

echo "== end-to-end tests"
if [ -d tests/e2e ] && ls tests/e2e/*.test.mjs >/dev/null 2>&1; then
  [ "${e2e_done:-0}" = 1 ] || { release_wait; e2e_exec "$log/e2e.txt"; }
  e2e_tally "$log/e2e.txt"
fi

# The release build (bin/) is no test; only its failure is said.
release_wait
[ "$release_ok" = 1 ] || { echo "not ok - release build (make all)"; tail -n 40 "$log/build-release.txt"; failed=$((failed + 1)); }

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
