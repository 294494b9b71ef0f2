#!/usr/bin/env bash
# Make sure headless Chromium is there for the page test
# (tests/test_book_pages.py). As root (on CI) install Debian's package;
# otherwise say what to do. CHROMIUM=/path/to/chrome uses another binary.
set -euo pipefail
if [[ -n ${CHROMIUM:-} ]]; then
    [[ -x $CHROMIUM ]] && exit 0
    echo "CHROMIUM=$CHROMIUM is not an executable file." >&2
    exit 1
fi
command -v chromium >/dev/null && exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "chromium not found: the page test drives it headless to look at" \
         "the built book. Install it (Debian/Ubuntu: sudo apt-get install" \
         "chromium), or set CHROMIUM to a Chrome or Chromium binary." >&2
    exit 1
fi
echo "chromium not found: installing Debian's package with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium
