#!/usr/bin/env bash
# Install Debian's opentracker, the reference tracker for tests/interop/test_opentracker.py.
# Run before the network is sealed (make install and .ci/run call it).  Without root or
# apt it says so and exits 0: the interop tests then skip with that reason.
set -euo pipefail
if command -v opentracker >/dev/null 2>&1 || [ -x /usr/bin/opentracker ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-tracker: opentracker missing and apt-get unavailable (not root?); its interop tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends opentracker >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null
  apt-get install -y --no-install-recommends opentracker >/dev/null
}
echo "install-tracker: $(command -v opentracker || echo /usr/bin/opentracker) installed"
