#!/usr/bin/env bash
# The import benchmark: a generated 1,000,000-row CSV (8 columns, a mix of
# phone forms, 1 % bad rows) imported into a fresh kaskad; prints rows/s and
# kaskad's peak RSS (targets: >= 200,000 rows/s, <= 256 MiB).
#   ROWS=1000000 bench/import.sh
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory all >/dev/null
node bench/import.mjs --rows "${ROWS:-1000000}"
