#!/usr/bin/env bash
# Installs what the suite needs on a Debian machine, skipping what is already there.
#   deploy/install.sh          the local run (make up)
#   deploy/install.sh --test   plus what the tests need (make test)
#   deploy/install.sh --bench  plus what the benchmark needs (make bench: wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
want_bench=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --bench) want_bench=1 ;;
    *) echo "usage: deploy/install.sh [--test] [--bench]" >&2; exit 2 ;;
  esac
done

SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"

debs=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || debs+=(nginx-light)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || debs+=(fonts-noto-cjk)
dpkg -s libharfbuzz-subset0 >/dev/null 2>&1 || debs+=(libharfbuzz-subset0)
dpkg -s libpango-1.0-0 >/dev/null 2>&1 || debs+=(libpango-1.0-0 libpangoft2-1.0-0)
# Redis only when none answers (the machine may already run one)
# (the tests always start one of their own on a free port, so `--test` needs the binary)
if [ $want_test -eq 1 ] || ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || debs+=(redis-server)
fi
# the tests decode QR codes from images, as a phone would, and drive headless Chromium
# (through the playwright package of requirements-test.txt; never `playwright install`)
if [ $want_test -eq 1 ]; then
  command -v zbarimg >/dev/null || debs+=(zbar-tools)
  command -v pdftotext >/dev/null || debs+=(poppler-utils)
  [ -x /usr/bin/chromium ] || debs+=(chromium)
fi
# the benchmark drives the gateway with wrk (Lua scripts); only `make bench` needs it
if [ $want_bench -eq 1 ]; then
  command -v wrk >/dev/null || debs+=(wrk)
fi
if [ ${#debs[@]} -gt 0 ]; then
  echo "installing Debian packages: ${debs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
req=requirements.txt
[ $want_test -eq 1 ] && req=requirements-test.txt
stamp=.venv/.installed-$(cat requirements.txt requirements-test.txt | sha256sum | cut -c1-16)-$want_test
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r "$req"
  touch "$stamp"
fi
