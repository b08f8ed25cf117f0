#!/usr/bin/env bash
# Install what the NAT lab tests (tests/lab) need: iproute2 (ip, bridges, veths, netns),
# nftables (NAT on the lab's routers) and miniupnpd-nftables (UPnP IGD + NAT-PMP/PCP on r1).
# Run with the network, before the tests are sealed in `unshare -n` (make install, .ci/run).
# Does nothing when the tools are already there, or when apt-get is not available (non-Debian
# machines, non-root users): the lab tests then skip outside CI and fail in CI.
set -euo pipefail

have_all() {
  command -v ip >/dev/null 2>&1 && command -v nft >/dev/null 2>&1 \
    && { command -v miniupnpd >/dev/null 2>&1 || [ -x /usr/sbin/miniupnpd ]; }
}

if have_all; then
  echo "install-lab: ip, nft and miniupnpd are present"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
  echo "install-lab: cannot install ip/nft/miniupnpd here (needs apt-get as root); lab tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends iproute2 nftables miniupnpd-nftables
# The package may try to start its own daemon where an init system runs; the lab starts its own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet miniupnpd 2>/dev/null; then
  systemctl disable --now miniupnpd || true
fi
have_all
echo "install-lab: installed iproute2, nftables, miniupnpd-nftables"
