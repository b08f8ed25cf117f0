"""Build the NAT lab inside the caller's private mount and network namespaces.

Theory of operation: :func:`enter_private_run` must run first, in a process started with
``unshare -m -n``; it makes every mount private and puts a tmpfs on /run/netns, so the
named namespaces made here exist only for this process tree and vanish with it.  The
lab is then

* ``inet``: the "internet", a bridge ``br0`` holding :data:`INET_NET` (a block outside every
  reserved range, because miniupnpd refuses a reserved external address; it exists only on
  these veths, which are joined to nothing else);
* ``r1``: NAT router (nftables masquerade), WAN ``wan`` = :data:`R1_WAN`, LAN bridge ``br-lan``
  192.168.1.1/24, optionally running miniupnpd (UPnP IGD and/or NAT-PMP/PCP);
* ``h1`` (192.168.1.10) and ``h1b`` (192.168.1.11) on r1's LAN;
* ``r2``: plain NAT router, WAN :data:`R2_WAN`, LAN 192.168.2.1/24, with ``h2`` (192.168.2.10).

Every process the lab starts is its child, tracked by PID, and killed in :meth:`Lab.close`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.netguard import LAB_MARKER, LAB_NETS_ENV

__all__ = [
    "H1",
    "H1B",
    "H2",
    "INET_NET",
    "LAB_NETS",
    "R1_WAN",
    "R2_WAN",
    "VARIANTS",
    "Lab",
    "enter_private_run",
]

ROOT = Path(__file__).resolve().parents[2]
GUARD_DIR = Path(__file__).resolve().parent / "guard"

INET_NET = "11.11.0.0/24"  # not reserved (miniupnpd insists), and present only on the lab's veths
INET_HOST = "11.11.0.100"
R1_WAN = "11.11.0.1"
R2_WAN = "11.11.0.2"
R1_LAN = "192.168.1.1"
R2_LAN = "192.168.2.1"
H1 = "192.168.1.10"
H1B = "192.168.1.11"
H2 = "192.168.2.10"
#: what lab processes may reach (besides loopback): the lab's segments and the multicast groups
#: of SSDP (239.255.255.250), NAT-PMP announcements (224.0.0.1) and LSD (BEP 14, v4 and v6)
LAB_NETS = (
    INET_NET,
    "192.168.1.0/24",
    "192.168.2.0/24",
    "239.255.255.250/32",
    "224.0.0.1/32",
    "239.192.152.143/32",
    "ff15::efc0:988f/128",
    "fe80::/10",
)
#: which mapping protocols r1's miniupnpd offers, per variant (None: no miniupnpd at all)
VARIANTS: dict[str, tuple[bool, bool] | None] = {
    "both": (True, True),  # (upnp, natpmp)
    "upnp": (True, False),
    "natpmp": (False, True),
    "none": None,
}
COMMAND_TIMEOUT = 20.0


def enter_private_run() -> None:
    """Make all mounts private and give this mount namespace its own /run/netns (tmpfs)."""
    parent = os.getppid()
    for kind in ("net", "mnt"):
        if os.stat(f"/proc/self/ns/{kind}").st_ino == os.stat(f"/proc/{parent}/ns/{kind}").st_ino:
            raise SystemExit("the lab must run in its own mount and network namespaces (unshare -m -n)")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True, timeout=COMMAND_TIMEOUT)
    os.makedirs("/run/netns", exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "lab-netns", "/run/netns"], check=True, timeout=COMMAND_TIMEOUT)
    Path(LAB_MARKER).touch()


def _run(*argv: str, input_: str | None = None) -> str:
    done = subprocess.run(
        list(argv), input=input_, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _nsrun(ns: str, *argv: str, input_: str | None = None) -> str:
    return _run("ip", "netns", "exec", ns, *argv, input_=input_)


R1_NFT = """
table inet filter {
    chain forward {
        type filter hook forward priority 0; policy drop;
        jump miniupnpd
        ct state established,related accept
        iifname "br-lan" oifname "wan" accept
    }
    chain miniupnpd {
    }
    chain prerouting {
        type nat hook prerouting priority -100; policy accept;
        jump prerouting_miniupnpd
    }
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        jump postrouting_miniupnpd
        oifname "wan" masquerade
    }
    chain prerouting_miniupnpd {
    }
    chain postrouting_miniupnpd {
    }
}
"""

R2_NFT = """
table inet filter {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "lan" oifname "wan" accept
    }
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        oifname "wan" masquerade
    }
}
"""


def miniupnpd_conf(upnp: bool, natpmp: bool, lease_file: Path) -> str:
    """miniupnpd's configuration for r1 (secure mode: a host maps only ports to itself)."""
    yes = {True: "yes", False: "no"}
    return "\n".join(
        [
            "ext_ifname=wan",
            "listening_ip=br-lan",
            "http_port=5000",
            f"enable_upnp={yes[upnp]}",
            f"enable_natpmp={yes[natpmp]}",
            "secure_mode=yes",
            "system_uptime=no",  # the epoch restarts with miniupnpd, as with a rebooted router
            f"lease_file={lease_file}",
            "uuid=5d0c0a7e-1ab0-4c11-a7e0-00000000b001",
            "upnp_table_name=filter",
            "upnp_nat_table_name=filter",
            "upnp_forward_chain=miniupnpd",
            "upnp_nat_chain=prerouting_miniupnpd",
            "upnp_nat_postrouting_chain=postrouting_miniupnpd",
            "allow 1024-65535 192.168.1.0/24 1024-65535",
            "deny 0-65535 0.0.0.0/0 0-65535",
            "",
        ]
    )


@dataclass
class Lab:
    """One built lab; use as a context manager so it is always torn down."""

    variant: str = "both"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="p2pshare-lab-")))
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    logs: list[IO[str]] = field(default_factory=list)
    _miniupnpd: subprocess.Popen[str] | None = None

    def __enter__(self) -> Lab:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown lab variant {self.variant!r}; one of {sorted(VARIANTS)}")
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building -------------------------------------------------------------------------------

    def build(self) -> None:
        """Create the namespaces, links, addresses, routes, NAT rules and (maybe) miniupnpd."""
        for ns in ("inet", "r1", "h1", "h1b", "r2", "h2"):
            _run("ip", "netns", "add", ns)
            _nsrun(ns, "ip", "link", "set", "lo", "up")
            # no duplicate address detection: link-local IPv6 (LSD's ff15:: group) works at once
            _nsrun(ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0")
        _nsrun("inet", "ip", "link", "add", "br0", "type", "bridge")
        _nsrun("inet", "ip", "addr", "add", f"{INET_HOST}/24", "dev", "br0")
        _nsrun("inet", "ip", "link", "set", "br0", "up")
        _nsrun("r1", "ip", "link", "add", "br-lan", "type", "bridge", "mcast_snooping", "0")
        _nsrun("r1", "ip", "addr", "add", f"{R1_LAN}/24", "dev", "br-lan")
        _nsrun("r1", "ip", "link", "set", "br-lan", "up")
        self._veth("r1", "wan", f"{R1_WAN}/24", "inet", "r1-wan", bridge="br0")
        self._veth("r2", "wan", f"{R2_WAN}/24", "inet", "r2-wan", bridge="br0")
        self._veth("h1", "eth0", f"{H1}/24", "r1", "lan-h1", bridge="br-lan")
        self._veth("h1b", "eth0", f"{H1B}/24", "r1", "lan-h1b", bridge="br-lan")
        self._veth("h2", "eth0", f"{H2}/24", "r2", "lan", peer_addr=f"{R2_LAN}/24")
        for host, gw in (("h1", R1_LAN), ("h1b", R1_LAN), ("h2", R2_LAN)):
            _nsrun(host, "ip", "route", "add", "default", "via", gw)
        for router in ("r1", "r2"):
            _nsrun(router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        # Where br_netfilter is loaded (Docker hosts), bridged LAN traffic would pass r1's inet
        # forward chain (policy drop); in this namespace, keep bridging out of netfilter.
        for knob in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"):
            if Path(f"/proc/sys/net/bridge/{knob}").exists():
                _nsrun("r1", "sysctl", "-q", "-w", f"net.bridge.{knob}=0")
        _nsrun("r1", "nft", "-f", "-", input_=R1_NFT)
        _nsrun("r2", "nft", "-f", "-", input_=R2_NFT)
        mapping = VARIANTS[self.variant]
        if mapping is not None:
            self._start_miniupnpd(*mapping)

    def _veth(
        self,
        ns: str,
        name: str,
        addr: str,
        peer_ns: str,
        peer_name: str,
        *,
        bridge: str | None = None,
        peer_addr: str | None = None,
    ) -> None:
        _nsrun(ns, "ip", "link", "add", name, "type", "veth", "peer", "name", peer_name, "netns", peer_ns)
        _nsrun(ns, "ip", "addr", "add", addr, "dev", name)
        _nsrun(ns, "ip", "link", "set", name, "up")
        if bridge is not None:
            _nsrun(peer_ns, "ip", "link", "set", peer_name, "master", bridge)
        if peer_addr is not None:
            _nsrun(peer_ns, "ip", "addr", "add", peer_addr, "dev", peer_name)
        _nsrun(peer_ns, "ip", "link", "set", peer_name, "up")

    def restart_miniupnpd(self) -> None:
        """Stop r1's miniupnpd (it removes its rules) and start it again: a router reboot, as far as
        mappings go."""
        mapping = VARIANTS[self.variant]
        if mapping is None or self._miniupnpd is None:
            raise RuntimeError("this lab variant runs no miniupnpd")
        self._miniupnpd.send_signal(signal.SIGTERM)
        self._miniupnpd.wait(timeout=10.0)
        (self.workdir / "leases").unlink(missing_ok=True)  # a reboot forgets every lease
        for chain in ("miniupnpd", "prerouting_miniupnpd", "postrouting_miniupnpd"):
            _nsrun("r1", "nft", "flush", "chain", "inet", "filter", chain)
        self._start_miniupnpd(*mapping)

    def _start_miniupnpd(self, upnp: bool, natpmp: bool) -> None:
        conf = self.workdir / "miniupnpd.conf"
        conf.write_text(miniupnpd_conf(upnp, natpmp, self.workdir / "leases"))
        pidfile = self.workdir / "miniupnpd.pid"
        proc = subprocess.Popen(
            ["ip", "netns", "exec", "r1", "miniupnpd", "-d", "-f", str(conf), "-P", str(pidfile)],
            stdout=self._logfile("miniupnpd.log"),
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.procs.append(proc)
        self._miniupnpd = proc
        deadline = time.monotonic() + 10.0
        want = [p for p, on in ((":5000", upnp), (":5351", natpmp)) if on]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"miniupnpd exited: {self.miniupnpd_log()}")
            listening = _nsrun("r1", "ss", "-lnut")
            if all(p in listening for p in want):
                return
            time.sleep(0.1)
        raise RuntimeError(f"miniupnpd did not start listening in time: {self.miniupnpd_log()}")

    def _logfile(self, name: str) -> IO[str]:
        handle = open(self.workdir / name, "a")  # noqa: SIM115 - closed in close()
        self.logs.append(handle)
        return handle

    def logs_text(self) -> str:
        """The tail of every log the lab's processes wrote (for failure messages)."""
        parts = []
        for path in sorted(self.workdir.glob("*.err")) + sorted(self.workdir.glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)

    def miniupnpd_log(self) -> str:
        path = self.workdir / "miniupnpd.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # -- running things inside ------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment for a Python process in the lab: our tree first, the lab guard, its networks."""
        drop = ("PYTEST", "P2PSHARE_NO_")  # port mapping and LSD are on in the lab, as for a user
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env["PYTHONPATH"] = os.pathsep.join([str(GUARD_DIR), str(ROOT)])
        env[LAB_NETS_ENV] = ",".join(LAB_NETS)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def spawn(self, ns: str, *argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``python argv...`` in namespace ``ns`` with pipes on stdin/stdout (``env`` added)."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._logfile(f"{ns}-{len(self.procs)}.err"),
            text=True,
            env={**self.env(), **(env or {})},
            cwd=ROOT,
        )
        self.procs.append(proc)
        return proc

    def nsrun(self, ns: str, *argv: str) -> str:
        """Run a command in ``ns`` and return its output (raises on failure)."""
        return _nsrun(ns, *argv)

    def nft_rules(self, chain: str) -> list[dict[str, object]]:
        """The rules of one chain of r1's ``inet filter`` table, as nftables JSON objects."""
        data = json.loads(_nsrun("r1", "nft", "-j", "list", "chain", "inet", "filter", chain))
        return [item["rule"] for item in data.get("nftables", []) if "rule" in item]

    def close(self) -> None:
        """Kill every process the lab started (by PID) and delete the namespaces."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)
        self.procs.clear()
        for handle in self.logs:
            handle.close()
        self.logs.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)
        for ns in ("h2", "r2", "h1b", "h1", "r1", "inet"):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=COMMAND_TIMEOUT)
