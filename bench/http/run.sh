#!/usr/bin/env bash
# Measures kaskad's HTTP layer (libmicrohttpd, external epoll polled by libuv)
# against h2o's libuv library, both as one-thread servers with the same three
# endpoints (see mhd_uv.c), then runs the same bad-input checks on both.
# Throughput is also measured for h2o with MALLOC_TOP_PAD_ set (h2o_pad; see
# README.md). Every figure comes from a fresh server process.
#
#   bench/http/run.sh            throughput table, then robustness table
#   bench/http/run.sh perf       throughput only
#   bench/http/run.sh robust     robustness only
#   RUNS=1 DURATION=5 bench/http/run.sh perf     quicker
#   TIMEOUT=5 bench/http/run.sh robust           quicker timeout checks
#
# Needs: libmicrohttpd-dev libuv1-dev libh2o-dev wrk curl python3 (stdlib).
# Servers listen on 127.0.0.1:$PORT_MHD and :$PORT_H2O. With 2+ cores the
# server runs on core 0 (taskset) and wrk on the others.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
WHAT=${1:-all}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}   # seconds per wrk run
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
TIMEOUT=${TIMEOUT:-30}     # servers' connection timeout in s (kaskad uses 30)
PORT_MHD=${PORT_MHD:-17101}
PORT_H2O=${PORT_H2O:-17102}
SLOW_CONNS=${SLOW_CONNS:-200}
IDLE_CONNS=${IDLE_CONNS:-2000}
MAX_SLOW=${MAX_SLOW:-4100}     # just over kaskad's connection limit (4096)
PERF_SERVERS=${PERF_SERVERS:-mhd h2o h2o_pad}
OUT=${OUT:-$top/build/bench-http}

for tool in wrk curl python3 pkg-config; do
  command -v $tool >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 1; }
done
pkg-config --exists libh2o libmicrohttpd libuv || {
  echo "run.sh: install libmicrohttpd-dev libuv1-dev libh2o-dev" >&2; exit 1; }
make -s -C "$here" O="$OUT" >/dev/null

work=$(mktemp -d)
SRV=
cleanup() {
  [ -n "$SRV" ] && kill -TERM "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# 2,000 idle and 4,100 slow connections: descriptors for the client and the server
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 10000 ] || ulimit -n 10000 2>/dev/null || true

if [ "$(nproc)" -ge 2 ]; then
  PIN_SRV="taskset -c 0"; PIN_LOAD="taskset -c 1-$(($(nproc) - 1))"
else
  PIN_SRV=; PIN_LOAD=
fi

# Servers: mhd, h2o, and h2o_pad (h2o with glibc told to keep 64 MiB of heap
# top instead of returning it to the kernel after each request: see README).
port_of() { [ "$1" = mhd ] && echo "$PORT_MHD" || echo "$PORT_H2O"; }
label() {
  case $1 in mhd) echo "libmicrohttpd";; h2o) echo "h2o";; h2o_pad) echo "h2o, MALLOC_TOP_PAD_=64M";; esac
}

start_server() {  # $1 = mhd | h2o | h2o_pad
  local port; port=$(port_of "$1")
  if [ "$1" = h2o_pad ]; then
    MALLOC_TOP_PAD_=67108864 $PIN_SRV "$OUT/h2o_uv" "$port" "$TIMEOUT" >>"$work/$1.log" 2>&1 &
  else
    $PIN_SRV "$OUT/${1}_uv" "$port" "$TIMEOUT" >>"$work/$1.log" 2>&1 &
  fi
  SRV=$!
  for _ in $(seq 100); do
    curl -sf -m 1 "http://127.0.0.1:$port/ping" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "run.sh: $(label "$1") did not start (see its log):" >&2
  cat "$work/$1.log" >&2
  exit 1
}
peak_rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SRV/status" 2>/dev/null || echo 0; }
stop_server() {  # sets RC: the exit status (0, or 128+signal when it died of one)
  RC=0
  if kill -0 "$SRV" 2>/dev/null; then kill -TERM "$SRV"; fi
  wait "$SRV" 2>/dev/null || RC=$?
  SRV=
}

# A message as kaskad receives it, about 300 bytes.
BODY='{"to":"+491701234567","from":"KASKAD","text":"Your code is 123456. This text makes the request about as long as a real one: three hundred bytes of JSON.","callback_url":"http://127.0.0.1:9/cb","client_ref":"ref-000000001","validity_s":3600,"priority":0,"tags":["bench","http"]}'
cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$BODY'
EOF

median_range() {  # "median [min–max]" of the arguments
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%s [%s–%s]", a[int((NR+1)/2)], a[1], a[NR]}'
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ---------------------------------------------------------------- throughput
perf() {
  declare -A rps p99 cpu busy flt errs peak
  local s ep run f script hwm c0 c1 f0 f1 tck
  tck=$(getconf CLK_TCK)
  peak[mhd]=0 peak[h2o]=0 peak[h2o_pad]=0
  # servers alternate run by run, so all see the same background noise
  for run in $(seq "$RUNS"); do
    for ep in ping echo later; do
      for s in $PERF_SERVERS; do
        start_server $s
        script=; [ $ep != ping ] && script="-s $work/post.lua"
        f=$work/wrk.$s.$ep.$run
        # server CPU (user + system ticks) and minor page faults
        read -r f0 c0 < <(awk '{print $10, $14 + $15}' "/proc/$SRV/stat")
        # shellcheck disable=SC2086
        $PIN_LOAD wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency $script \
          "http://127.0.0.1:$(port_of $s)/$ep" >"$f" 2>&1 || true
        read -r f1 c1 < <(awk '{print $10, $14 + $15}' "/proc/$SRV/stat")
        hwm=$(peak_rss_kb)
        [ "$hwm" -gt "${peak[$s]}" ] && peak[$s]=$hwm
        stop_server
        [ "$RC" = 0 ] || echo "run.sh: $(label $s) exited with $RC during /$ep" >&2
        rps[$s,$ep]+="$(awk '/^Requests\/sec:/ {printf "%d", $2}' "$f") "
        # wrk prints "99%  1.23ms" (us, ms or s): keep ms
        p99[$s,$ep]+="$(awk '$1 == "99%" {v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
          if (u == "us") v /= 1000; else if (u == "s") v *= 1000; printf "%.2f", v}' "$f") "
        # server CPU time per request (independent of how fast wrk is) and
        # how busy the server's core was
        cpu[$s,$ep]+="$(awk -v t=$((c1 - c0)) -v hz="$tck" '/requests in/ {printf "%.1f", t / hz * 1e6 / $1}' "$f") "
        flt[$s,$ep]+="$(awk -v n=$((f1 - f0)) '/requests in/ {printf "%.2f", n / $1}' "$f") "
        busy[$s,$ep]+="$(awk -v t=$((c1 - c0)) -v hz="$tck" -v d="$DURATION" 'BEGIN {printf "%d", 100 * t / hz / d}') "
        # requests that failed: non-2xx answers and socket errors
        errs[$s,$ep]=$(( ${errs[$s,$ep]:-0} + $(awk '/Non-2xx/ {n += $NF}
          /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$f") ))
      done
    done
  done
  echo
  echo "### Throughput: median [min–max] of $RUNS runs"
  echo
  echo "wrk -t$THREADS -c$CONNS -d${DURATION}s, keep-alive, $(nproc) cores; $(
    [ -n "$PIN_SRV" ] && echo "server pinned to core 0, wrk on the other core(s)" || echo "nothing pinned")."
  echo "CPU µs/req: the server's user + system CPU time divided by the requests served."
  echo
  echo "| endpoint | server | req/s | p99 ms | CPU µs/req | page faults/req | server core busy % | failed |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  for ep in ping echo later; do
    for s in $PERF_SERVERS; do
      # shellcheck disable=SC2086
      printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$(case $ep in ping) echo 'GET /ping';; echo) echo 'POST /echo';; later) echo 'POST /later (1 ms timer)';; esac)" \
        "$(label $s)" "$(median_range ${rps[$s,$ep]})" "$(median ${p99[$s,$ep]})" \
        "$(median_range ${cpu[$s,$ep]})" "$(median ${flt[$s,$ep]})" "$(median ${busy[$s,$ep]})" "${errs[$s,$ep]}"
    done
  done
  echo
  printf 'Peak RSS (VmHWM) over these runs:'
  for s in $PERF_SERVERS; do
    printf ' %s %s MiB;' "$(label $s)" "$(awk -v k="${peak[$s]}" 'BEGIN {printf "%.1f", k / 1024}')"
  done
  echo
}

# ---------------------------------------------------------------- robustness
# One probe per check and server, each against a fresh server. The probe
# prints "PASS detail" or "FAIL detail"; the server must also still be alive
# and exit cleanly on SIGTERM.
cat >"$work/probe.py" <<'PY'
import os, random, select, socket, sys, time

check, port, timeout, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
slow_conns, idle_n, max_slow = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
body = os.environ["BODY"].encode()
ADDR = ("127.0.0.1", port)

def rss_mib():
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0

def alive():
    try:
        return open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] not in ("Z", "X")
    except OSError:
        return False

class Conn:
    def __init__(self, timeout=5):
        self.s = socket.create_connection(ADDR, timeout=timeout)
        self.buf = b""
    def send(self, data):
        self.s.sendall(data)
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self.s.settimeout(left)
        d = self.s.recv(65536)
        if not d:
            raise EOFError()
        self.buf += d
    def response(self, wait=5.0):
        """(status, headers, body); EOFError when closed, socket.timeout."""
        deadline = time.monotonic() + wait
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill(deadline)
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                n = int(size_line.split(b";")[0], 16)
                while len(self.buf) < n + 2:
                    self._fill(deadline)
                out, self.buf = out + self.buf[:n], self.buf[n + 2:]
                if n == 0:
                    return status, hdrs, out
        n = int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill(deadline)
        b, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, b
    def outcome(self, wait=5.0):
        """What the server did: 'HTTP nnn', 'closed', 'reset' or 'no answer'."""
        try:
            st, h, b = self.response(wait)
            closing = h.get("connection", "").lower() == "close"
            # the bench handler's own refusals: the HTTP layer let it through
            app = b in (b"not found", b'{"error":"bad json"}')
            return f"HTTP {st}" + (" from the handler" if app else "") + (" + close" if closing else "")
        except EOFError:
            return "closed"
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        except socket.timeout:
            return f"no answer in {wait:g} s"
    def close(self):
        self.s.close()

def req(method, path, data=None, extra=""):
    r = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
    if data is not None:
        r += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        return r.encode() + data
    return (r + "\r\n").encode()

def ping(wait=5.0):
    """ms for GET /ping on a new connection, or None."""
    t0 = time.monotonic()
    try:
        c = Conn(wait)
        c.send(req("GET", "/ping"))
        st, _, b = c.response(wait)
        c.close()
        return (time.monotonic() - t0) * 1000 if st == 200 and b == b"ok" else None
    except (OSError, EOFError):
        return None

def after(ok, detail):
    """Appends the server's state after the check; the check passes only if
    the server is alive and answers a new connection."""
    p = ping()
    fine = ok and alive() and p is not None
    detail += "; then " + ("ping ok" if p is not None else "ping FAILED")
    if not alive():
        detail += ", server DEAD"
    print(("PASS " if fine else "FAIL ") + detail)

def refused(o):
    return o.startswith("HTTP 4") or o in ("closed", "reset")

def big_headers():
    pad = "".join(f"X-Pad-{i}: {'a' * 2000}\r\n" for i in range(50))  # ~100 KB
    c = Conn()
    t0 = time.monotonic()
    try:
        c.send(req("GET", "/ping", extra=pad))
        o = c.outcome()
    except (BrokenPipeError, ConnectionResetError):
        o = "reset while sending"
    ms = (time.monotonic() - t0) * 1000
    # refused (4xx / closed) or served: both fine, hanging is not
    after(not o.startswith("no answer"), f"{len(pad) // 1024} KiB of headers: {o} in {ms:.0f} ms")

def big_body():
    size = 2 * 1024 * 1024  # over the 1 MiB limit
    c = Conn()
    rss0 = rss_mib()
    c.send(f"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Content-Length: {size}\r\n\r\n".encode())
    o = c.outcome(2.0)
    when = "before the body was sent"
    if o.startswith("no answer"):
        when = "after the whole body was sent"
        try:
            chunk = b"x" * 65536
            for _ in range(size // len(chunk)):
                c.send(chunk)
            o = c.outcome(5.0)
        except (BrokenPipeError, ConnectionResetError):
            o, when = "reset", "while the body was being sent"
    after(o.startswith("HTTP 413"), f"Content-Length 2 MiB: {o} {when}, RSS {rss0:.1f}->{rss_mib():.1f} MiB")

def chunked():
    c = Conn()
    parts = [body[:100], body[100:250], body[250:]]
    enc = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    c.send(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" + enc)
    try:
        st, _, b = c.response()
        small = f"HTTP {st}"
        ok1 = st == 202 and f'"body_bytes":{len(body)}'.encode() in b
    except (OSError, EOFError) as e:
        small, ok1 = type(e).__name__, False
    c.close()
    # 2 MiB in 64 KiB chunks: must be refused too
    c = Conn()
    c.send(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    o = None
    try:
        chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
        for _ in range(32):
            c.send(chunk)
            r, _, _ = select.select([c.s], [], [], 0)
            if r:
                o = c.outcome(); break
        if o is None:
            c.send(b"0\r\n\r\n")
            o = c.outcome()
    except (BrokenPipeError, ConnectionResetError):
        o = "reset"
    after(ok1 and o.startswith("HTTP 413"), f"3 chunks: {small}; 2 MiB chunked: {o}")

def gone_by_server(socks, wait):
    """The sockets the server has closed (EOF or error), waiting up to wait s."""
    po = select.poll()
    byfd = {}
    for s in socks:
        po.register(s, select.POLLIN | select.POLLERR | select.POLLHUP)
        byfd[s.fileno()] = s
    out = []
    for fd, _ in po.poll(int(wait * 1000)):
        s = byfd[fd]
        try:
            while True:
                if not s.recv(65536):  # a 408 or the like, then EOF
                    out.append(s); break
        except BlockingIOError:
            pass
        except OSError:
            out.append(s)
    return out

def slowloris_max():
    slowloris(max_slow)

def slowloris(n=None):
    slow_n = n or slow_conns
    conns = []
    for _ in range(slow_n):
        s = socket.create_connection(ADDR, timeout=5)
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        s.setblocking(False)
        conns.append(s)
    t0 = time.monotonic()
    open_ = set(conns)
    closed_at = []
    pings, worst = [], 0.0
    limit = timeout + 15
    while open_ and time.monotonic() - t0 < limit:
        gone = set(gone_by_server(open_, 0))
        for s in open_ - gone:
            try:
                s.send(b"a")  # one header byte per second
            except BlockingIOError:
                pass
            except OSError:
                gone.add(s)
        for s in gone:
            closed_at.append(time.monotonic() - t0)
            s.close()
        open_ -= gone
        p = ping(2.0)
        pings.append(p)
        if p is not None:
            worst = max(worst, p)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0) % 1.0))
    t = time.monotonic() - t0
    for s in open_:
        s.close()
    okp = sum(p is not None for p in pings)
    if open_:
        what = f"{len(open_)}/{slow_n} still open after {t:.0f} s (one byte/s keeps them alive)"
    else:
        what = f"all {slow_n} closed by the server after {max(closed_at):.0f} s"
    detail = f"{what}; other clients: {okp}/{len(pings)} pings ok" + (f", slowest {worst:.1f} ms" if okp else "")
    after(not open_ and max(closed_at) <= timeout + 10 and okp == len(pings), detail)

def idle():
    rss0 = rss_mib()
    conns, failed = [], 0
    for i in range(idle_n):
        try:
            s = socket.create_connection(ADDR, timeout=5)
            if i % 2:  # half after one keep-alive request, half silent
                s.sendall(req("GET", "/ping"))
                s.settimeout(5)
                d = b""
                while not d.endswith(b"ok"):
                    d += s.recv(4096)
            s.setblocking(False)
            conns.append(s)
        except OSError:
            failed += 1
    time.sleep(0.5)
    rss1 = rss_mib()
    p = ping()
    t0 = time.monotonic()
    open_ = set(conns)
    early = len(gone_by_server(open_, 0))  # closed before the timeout (e.g. over a limit)
    while open_ and time.monotonic() - t0 < timeout + 15:
        for s in gone_by_server(open_, 1.0):
            open_.discard(s); s.close()
    t = time.monotonic() - t0
    for s in open_:
        s.close()
    detail = (f"{len(conns)}/{idle_n} connected"
              + (f" ({early} closed at once)" if early else "")
              + f", RSS {rss0:.1f}->{rss1:.1f} MiB, ping meanwhile "
              + (f"{p:.1f} ms" if p is not None else "FAILED")
              + (f"; all closed by the server after {t:.0f} s" if not open_
                 else f"; {len(open_)} still open after {t:.0f} s"))
    after(not failed and not early and p is not None and not open_, detail)

def garbage():
    rnd = random.Random(42)
    layer = lambda o: refused(o) and "handler" not in o  # refused by the HTTP layer
    cases = [
        ("random bytes", bytes(rnd.randrange(256) for _ in range(4096)), refused),
        ("header without colon", b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColonHere\r\n\r\n", refused),
        ("NUL in request line", b"GET /pi\x00ng HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", refused),
        ("negative Content-Length", b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n{}",
         layer),
    ]
    run_cases(cases)

def smuggling():
    layer = lambda o: refused(o) and "handler" not in o
    cases = [
        # request smuggling vectors (RFC 9112 6.1, 6.3). Two different lengths
        # must be refused; the body is valid JSON for the first, so a server
        # that takes it answers 202.
        ("two Content-Lengths", b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n"
                                b"Content-Length: 50\r\n\r\n{\"to\":\"1\"}", layer),
        # chunked must win over Content-Length (a 202 here), or be refused
        ("Content-Length + chunked", b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n"
                                     b"Transfer-Encoding: chunked\r\n\r\na\r\n{\"to\":\"1\"}\r\n0\r\n\r\n",
         lambda o: layer(o) or o.startswith("HTTP 202")),
    ]
    run_cases(cases)

def run_cases(cases):
    res, ok = [], True
    for name, data, good in cases:
        c = Conn()
        try:
            c.send(data)
            o = c.outcome(3.0)
        except (BrokenPipeError, ConnectionResetError):
            o = "reset"
        c.close()
        ok &= bool(good(o))
        res.append(f"{name}: {o}" + ("" if good(o) else " (WRONG)"))
    after(ok, "; ".join(res))

def pipelined():
    order = ["ping", "later", "echo", "ping", "later", "later", "echo", "ping", "echo", "ping"]
    data = b"".join(req("GET", "/ping") if e == "ping" else req("POST", "/" + e, body) for e in order)
    c = Conn()
    c.send(data)  # all ten in one write
    got = []
    try:
        for e in order:
            st, _, b = c.response()
            kind = "ping" if (st == 200 and b == b"ok") else ("json" if st == 202 and b.startswith(b"{") else f"?{st}")
            got.append(kind)
    except (OSError, EOFError) as e:
        got.append(type(e).__name__)
    want = ["ping" if e == "ping" else "json" for e in order]
    after(got == want, f"{sum(a == b for a, b in zip(got, want))}/10 answers in order in one read stream"
          + ("" if got == want else f" (got {got})"))

def abandoned():
    for _ in range(500):
        c = Conn()
        c.send(req("POST", "/later", body))
        c.close()  # gone before the timer answers
    time.sleep(0.5)
    after(True, "500 clients gone before their answer")

globals()[check]()
PY

robust() {
  local checks="big_headers big_body chunked slowloris slowloris_max idle garbage smuggling pipelined abandoned"
  declare -A res
  local s c out
  for s in mhd h2o; do
    for c in $checks; do
      start_server $s
      out=$(BODY=$BODY python3 "$work/probe.py" "$c" "$(port_of $s)" "$TIMEOUT" "$SRV" \
        "$SLOW_CONNS" "$IDLE_CONNS" "$MAX_SLOW" 2>&1 | tail -n 1) || true
      stop_server
      [ "$RC" = 0 ] || out="FAIL (exit status $RC) ${out#* }"
      case $out in PASS*|FAIL*) ;; *) out="FAIL (probe error: ${out:-no output})";; esac
      res[$s,$c]=$out
      echo "  $(label $s) $c: $out" >&2
    done
  done
  echo
  echo "### Robustness (connection timeout ${TIMEOUT} s, body limit 1 MiB)"
  echo
  echo "| check | libmicrohttpd | h2o |"
  echo "| --- | --- | --- |"
  for c in $checks; do
    local name
    case $c in
      big_headers) name="100 KB of request headers";;
      big_body) name="body over the 1 MiB limit (Content-Length)";;
      chunked) name="chunked body (small; and 2 MiB)";;
      slowloris) name="slowloris: $SLOW_CONNS clients, one header byte/s each";;
      slowloris_max) name="slowloris: $MAX_SLOW clients (over the 4,096 connection limit)";;
      idle) name="$IDLE_CONNS idle connections";;
      garbage) name="garbage instead of HTTP";;
      smuggling) name="ambiguous body length (smuggling vectors)";;
      pipelined) name="10 pipelined requests";;
      abandoned) name="client gone before a later answer";;
    esac
    echo "| $name | ${res[mhd,$c]} | ${res[h2o,$c]} |"
  done
}

case $WHAT in
  perf) perf;;
  robust) robust;;
  all) perf; robust;;
  *) echo "usage: $0 [all|perf|robust]" >&2; exit 2;;
esac
