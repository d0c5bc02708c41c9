#!/usr/bin/env bash
# The segments benchmark (bench/segments.mjs): a segment's count over a
# generated base of ROWS contacts (target <= 1 s for 1,000,000) and the
# export of the base and of the segment, with kaskad's peak RSS. On
# PostgreSQL when KASKAD_E2E_STORE names a server.
#   ROWS=1000000 bench/segments.sh
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory all >/dev/null
node bench/segments.mjs --rows "${ROWS:-1000000}"
