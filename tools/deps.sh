#!/usr/bin/env bash
# Installs the Debian packages kaskad needs to build, run and test, when any
# is missing (sqlite3, the shell, lets tests write rows no API would;
# postgresql gives the tests a private cluster, tools/pg-test.sh). Needs
# root (or sudo). Safe to run again.
set -eu
pkgs=(build-essential pkg-config clang libclang-rt-14-dev
      libuv1-dev libmicrohttpd-dev libjansson-dev libsqlite3-dev
      libcurl4-openssl-dev libssl-dev libcsv-dev libicu-dev curl openssl sqlite3
      libpq-dev postgresql)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
