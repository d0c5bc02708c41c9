#!/usr/bin/env bash
# kaskad on PostgreSQL beside SQLite: SMS end to end and cascade steps/s with
# 1, 2 and 3 nodes on one database, CPU per message of each node and of the
# server; medians [min–max] over RUNS runs, the stores taking turns.
#   RUNS=3 N=20000 CN=20000 RATE=10000 NODES="1 2 3" bench/pg.sh
#   NODES may name the writers of each node too: "1 3 3x1" adds three
#   nodes of one writer each (store_writers=1; the default is kaskad's).
#   BENCH_OUT=file keeps each run's JSON line (bench/pg.mjs) there.
#   BEFORE=dir also runs the kaskad of dir/ (e.g. an older build's bin/) on
#   one node of PostgreSQL, labelled "postgresql, before" (in the first
#   BEFORE_RUNS runs, default all).
# Each figure is one bench/pg.mjs run (see its header) on a fresh simulator,
# fresh kaskad nodes and, for PostgreSQL, a fresh database of a private
# cluster started here with fsync and synchronous_commit on (the defaults:
# an acknowledgement is durable), on loopback, stopped at the end.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
N=${N:-20000}
CN=${CN:-20000}
RATE=${RATE:-10000}
NODES=${NODES:-1 2 3}
make --no-print-directory all >/dev/null
work=$(mktemp -d)
export KASKAD_PG_STATE=$work/pg.state KASKAD_PG_DURABLE=1
url=$(tools/pg-test.sh start)
trap 'tools/pg-test.sh stop || true; rm -rf "$work"' EXIT
{ read -r pgdir; read -r _; read -r pgbin; } <"$KASKAD_PG_STATE"
pgpid=$(head -n 1 "$pgdir/data/postmaster.pid")
hostport=${url#postgresql://postgres@}
hostport=${hostport%%/*}
ndb=0
# A new, empty database: its URL in $db. The one before goes first, and a
# checkpoint writes out what it left, so that no figure pays for the
# vacuum and the writes of the run before it.
fresh_db() {
  local h=${hostport%:*} p=${hostport#*:}
  [ "$ndb" = 0 ] || "$pgbin/dropdb" -h "$h" -p "$p" -U postgres "bench$ndb"
  "$pgbin/psql" -h "$h" -p "$p" -U postgres -d postgres -qAtc CHECKPOINT >/dev/null
  ndb=$((ndb + 1))
  "$pgbin/createdb" -h "$h" -p "$p" -U postgres "bench$ndb"
  db="postgresql://postgres@$hostport/bench$ndb"
}

out=${BENCH_OUT:-$work/runs.jsonl}   # one JSON line per figure (BENCH_OUT keeps them)
: >"$out"
for run in $(seq "$RUNS"); do
  for mode in sms cascade; do
    n=$N; [ "$mode" = cascade ] && n=$CN
    node bench/pg.mjs --mode $mode --store sqlite --nodes 1 --n "$n" --rate "$RATE" >>"$out"
    if [ -n "${BEFORE:-}" ] && [ "$run" -le "${BEFORE_RUNS:-$RUNS}" ]; then
      fresh_db
      KASKAD_BIN_DIR=$BEFORE node bench/pg.mjs --mode $mode --store "$db" --nodes 1 --n "$n" \
        --rate "$RATE" --pg_pid "$pgpid" --label "postgresql, before" >>"$out"
    fi
    for k in $NODES; do   # N nodes, or NxW: N nodes of W writers each (store_writers)
      fresh_db
      w=(); label=()
      if [ "${k#*x}" != "$k" ]; then
        w=(--writers "${k#*x}"); label=(--label "postgresql, ${k#*x} writer(s) a node"); k=${k%x*}
      fi
      node bench/pg.mjs --mode $mode --store "$db" --nodes "$k" --n "$n" --rate "$RATE" \
        --pg_pid "$pgpid" "${w[@]}" "${label[@]}" >>"$out"
    done
  done
  echo "run $run done" >&2
done

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}'), fsync on, synchronous_commit on; $RUNS runs, median [min–max]"
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (v) => { v = v.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (!v.length) return "–";
  const f = (x) => x.toLocaleString("en-US");
  return `${f(v[Math.floor((v.length - 1) / 2)])} [${f(v[0])}–${f(v[v.length - 1])}]`; };
console.log("| store | nodes | SMS end to end msg/s | kaskad CPU µs/SMS (each node) | PostgreSQL CPU µs/SMS | cascade steps/s | kaskad CPU µs/cascade | PostgreSQL CPU µs/cascade |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
const keys = [...new Set(rows.map((r) => `${r.store} ${r.nodes}`))];
for (const k of keys) {
  const nodes = k.slice(k.lastIndexOf(" ") + 1), store = k.slice(0, k.lastIndexOf(" "));
  const of = (mode) => rows.filter((r) => r.store === store && r.nodes === Number(nodes) && r.mode === mode);
  const s = of("sms"), c = of("cascade");
  const each = (rs) => rs.length ? rs[0].cpu_us_per_msg_nodes.map((_, i) => med(rs.map((r) => r.cpu_us_per_msg_nodes[i]).filter(Boolean)).split(" ")[0]).join(" / ") : "–";
  console.log(`| ${store} | ${nodes} | ${med(s.map((r) => r.per_s))} | ${med(s.map((r) => r.cpu_us_per_msg_kaskad))} (${each(s)}) | ${med(s.map((r) => r.cpu_us_per_msg_pg))} | ${med(c.map((r) => r.per_s))} | ${med(c.map((r) => r.cpu_us_per_msg_kaskad))} (${each(c)}) | ${med(c.map((r) => r.cpu_us_per_msg_pg))} |`);
}
' "$out"
