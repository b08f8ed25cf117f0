"""A NAT lab for BEP 55: two hosts behind two routers without port mapping, a relay on the "internet".

Everything lives in network namespaces made inside the caller's own ``unshare -m -n``,
joined only by veth pairs made here: nothing can leave the machine::

                 inet (bridge br0; the relay at 198.18.0.100)
                /                                      \\
    r1 wan 198.18.0.1  (nft masquerade,          r2 wan 198.18.0.2
    lan 192.168.1.1     new from wan dropped)     lan 192.168.2.1
        |                                             |
    h1 192.168.1.10                               h2 192.168.2.10

The routers forward what their LAN starts and the replies to it (conntrack), and
drop anything new from the WAN, to themselves too, silently, as home routers do:
no port mapping, no forwarding.  (Delivered to the router instead, an early SYN
would leave a conntrack entry that makes the masquerade pick another port for the
host's own SYN a moment later, and the punch would miss.)  A UDP flow is
let in only after the host behind sent to that address and port: hole punching.
"""

from __future__ import annotations

import os
import subprocess

__all__ = ["H1", "H2", "R1_WAN", "R2_WAN", "RELAY", "build"]

RELAY, R1_WAN, R2_WAN = "198.18.0.100", "198.18.0.1", "198.18.0.2"
H1, H2 = "192.168.1.10", "192.168.2.10"

_NAT = """
table ip nat {
  chain post { type nat hook postrouting priority 100; oifname "wan" masquerade; }
}
table ip filter {
  chain forwarding {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" accept
  }
  chain incoming {
    type filter hook input priority 0; policy accept;
    iifname "wan" ct state new drop
  }
}
"""


def _run(*argv: str, input_: str | None = None) -> None:
    subprocess.run(list(argv), check=True, timeout=20, input=input_, text=True, capture_output=True)


def _ip(*argv: str) -> None:
    _run("ip", *argv)


def build() -> None:
    """Make the namespaces, links, addresses, routes and the two NATs (inside ``unshare -m -n``)."""
    _run("mount", "--make-rprivate", "/")
    os.makedirs("/run/netns", exist_ok=True)
    _run("mount", "-t", "tmpfs", "tmpfs", "/run/netns")
    for ns in ("inet", "r1", "r2", "h1", "h2"):
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", "inet", "link", "add", "br0", "type", "bridge")
    _ip("-n", "inet", "addr", "add", f"{RELAY}/24", "dev", "br0")
    _ip("-n", "inet", "link", "set", "br0", "up")
    for i, wan in ((1, R1_WAN), (2, R2_WAN)):
        r, h = f"r{i}", f"h{i}"
        _ip("link", "add", "wan", "netns", r, "type", "veth", "peer", "name", f"p{i}", "netns", "inet")
        _ip("-n", "inet", "link", "set", f"p{i}", "master", "br0")
        _ip("-n", "inet", "link", "set", f"p{i}", "up")
        _ip("-n", r, "addr", "add", f"{wan}/24", "dev", "wan")
        _ip("-n", r, "link", "set", "wan", "up")
        _ip("link", "add", "lan", "netns", r, "type", "veth", "peer", "name", "eth0", "netns", h)
        _ip("-n", r, "addr", "add", f"192.168.{i}.1/24", "dev", "lan")
        _ip("-n", r, "link", "set", "lan", "up")
        _ip("-n", h, "addr", "add", f"192.168.{i}.10/24", "dev", "eth0")
        _ip("-n", h, "link", "set", "eth0", "up")
        _ip("-n", h, "route", "add", "default", "via", f"192.168.{i}.1")
        _run("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _run("ip", "netns", "exec", r, "nft", "-f", "-", input_=_NAT)
