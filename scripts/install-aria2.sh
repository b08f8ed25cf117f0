#!/usr/bin/env bash
# Install Debian's aria2 (aria2c), the second BitTorrent client of tests/interop/test_opentracker.py and test_tracker_wired.py.
# Run before the network is sealed (make install and .ci/run call it).  Without root or
# apt it says so and exits 0: the interop tests then skip with that reason.
set -euo pipefail
if command -v aria2c >/dev/null 2>&1 || [ -x /usr/bin/aria2c ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-aria2: aria2c missing and apt-get unavailable (not root?); its interop tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends aria2 >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null
  apt-get install -y --no-install-recommends aria2 >/dev/null
}
echo "install-aria2: $(command -v aria2c || echo /usr/bin/aria2c) installed"
