"""Lab scenarios: each drives agents (tests/lab/agent.py) in the lab's namespaces and returns facts.

A scenario asserts nothing itself; it returns what it observed (JSON-able) and the tests
in tests/lab/test_*.py decide.  Every wait is bounded.
"""

from __future__ import annotations

import json
import random
import selectors
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.lab.netlab import H1, H1B, H2, R1_WAN, Lab

__all__ = ["SCENARIOS"]

TCP_PORT = 46881
UDP_PORT = 46882


def read_json_line(proc: subprocess.Popen[str], timeout: float, event: str | None = None) -> dict[str, Any]:
    """The next JSON line an agent prints (with this ``event``, if given), waiting at most ``timeout`` s."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"agent printed nothing within {timeout} s")
            if not sel.select(remaining):
                continue
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"agent exited ({proc.wait(5)}) before printing a result")
            if line.startswith("{"):
                result: dict[str, Any] = json.loads(line)
                if event is None or result.get("event") == event:
                    return result


def send(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def miniupnpd_rules(lab: Lab) -> dict[str, int]:
    """How many rules miniupnpd holds in each of its chains on r1 (none when miniupnpd is off)."""
    return {chain: len(lab.nft_rules(chain)) for chain in ("miniupnpd", "prerouting_miniupnpd")}


def probe_from_h2(lab: Lab, tcp: int, udp: int) -> dict[str, Any]:
    """h2 (behind plain NAT r2) connects to r1's external address on these ports."""
    args = ("probe", "--host", R1_WAN, "--tcp", str(tcp), "--udp", str(udp))
    return read_json_line(lab.spawn("h2", "-m", "tests.lab.agent", *args), 30.0)


def portmap(
    lab: Lab, protocols: str = "natpmp,upnp", *, renew: bool = False, pcp: bool = True
) -> dict[str, Any]:
    """h1 maps TCP and UDP ports on r1; h2 connects to r1's external address; h1 closes; r1 is checked."""
    lease = 8 if renew else 3600
    started = time.monotonic()
    args = ["portmap", "--tcp", str(TCP_PORT), "--udp", str(UDP_PORT), "--protocols", protocols]
    args += ["--lease", str(lease), "--natpmp-tries", "4"] + ([] if pcp else ["--no-pcp"])
    agent = lab.spawn("h1", "-m", "tests.lab.agent", *args)
    settled = read_json_line(agent, 40.0)
    result: dict[str, Any] = {
        "settled": settled,
        "settle_seconds": time.monotonic() - started,
        "rules_mapped": miniupnpd_rules(lab),
    }
    status = settled["status"]
    tcp_ext = next((m["external_port"] for m in status["mappings"] if m["protocol"] == "tcp"), TCP_PORT)
    udp_ext = next((m["external_port"] for m in status["mappings"] if m["protocol"] == "udp"), UDP_PORT)
    result["probe"] = probe_from_h2(lab, tcp_ext, udp_ext)
    if renew:
        send(agent, "renewed")
        result["renewed"] = read_json_line(agent, 30.0)
    send(agent, "close")
    result["closed"] = read_json_line(agent, 30.0, "closed")
    if result["closed"].get("close_hung"):
        raise RuntimeError("PortMapper.close() did not return within 15 s (task stacks in h1's log)")
    result["rules_after_close"] = miniupnpd_rules(lab)
    result["probe_after_close"] = probe_from_h2(lab, tcp_ext, udp_ext)
    result["r1_wan"] = R1_WAN
    return result


def lsd(lab: Lab) -> dict[str, Any]:
    """h1b listens (announcing A), then h1 announces A and C on r1's LAN; each reports whom it heard.

    h1b starts first and announces at once, before h1 listens; h1 announces once h1b listens, so
    h1b must hear h1 (for A only: it does not take part in C), and h1 hears only itself, ignored.
    """
    shared, only_h1 = "a1" * 20, "c3" * 20
    args_b = ("lsd", "--duration", "6", "--port", "6882", "--infohash", shared)
    b = lab.spawn("h1b", "-m", "tests.lab.agent", *args_b)
    read_json_line(b, 30.0, "lsd-started")
    args = ("-m", "tests.lab.agent", "lsd", "--duration", "3", "--port", "6881")
    a = lab.spawn("h1", *args, "--infohash", shared, "--infohash", only_h1)
    return {
        "h1": read_json_line(a, 30.0, "lsd"),
        "h1b": read_json_line(b, 30.0, "lsd"),
        "addresses": {"h1": H1, "h1b": H1B},
        "infohashes": {"shared": shared, "only_h1": only_h1},
    }


def portmap_conflict(lab: Lab, protocols: str) -> dict[str, Any]:
    """h1b maps the ports first; h1 then asks for the same ones and must get others that reach h1."""
    base = ["portmap", "--tcp", str(TCP_PORT), "--udp", str(UDP_PORT), "--protocols", protocols]
    first = lab.spawn("h1b", "-m", "tests.lab.agent", *base, "--name", "h1b")
    result: dict[str, Any] = {"h1b": read_json_line(first, 40.0, "settled")}
    second = lab.spawn("h1", "-m", "tests.lab.agent", *base, "--name", "h1")
    result["h1"] = read_json_line(second, 40.0, "settled")
    ports = {m["protocol"]: m["external_port"] for m in result["h1"]["status"]["mappings"]}
    result["probe_h1"] = probe_from_h2(lab, ports.get("tcp", TCP_PORT), ports.get("udp", UDP_PORT))
    result["probe_h1b"] = probe_from_h2(lab, TCP_PORT, UDP_PORT)
    for proc in (second, first):
        send(proc, "close")
        read_json_line(proc, 30.0, "closed")
    result["rules_after_close"] = miniupnpd_rules(lab)
    return result


def run_get(
    lab: Lab, ns: str, info_hash: str, peer: str, out: Path, state: Path, timeout: float
) -> tuple[dict[str, Any], int, dict[str, float]]:
    """Run ``p2pshare get --peer`` in ``ns``; its last event, exit code, and when it first connected/ended."""
    started = time.monotonic()
    get = lab.spawn(
        ns, "-m", "p2pshare", "get", info_hash, "--peer", peer,
        "--no-dht", "--json", "-o", str(out), "--timeout", str(timeout),
        env={"P2PSHARE_STATE_DIR": str(state)},
    )  # fmt: skip
    marks: dict[str, float] = {}
    while True:
        event = read_json_line(get, timeout + 30.0)
        kind = event.get("event")
        if kind == "peer_connected":
            marks.setdefault("first_peer", time.monotonic() - started)
        elif kind in ("done", "error"):
            marks["end"] = time.monotonic() - started
            return event, get.wait(30.0), marks


def start_share(lab: Lab, ns: str) -> tuple[Path, dict[str, Any]]:
    """``p2pshare share`` of 4 MiB on ``TCP_PORT`` in ``ns`` (no DHT): its payload and listening event."""
    payload = lab.workdir / f"share-{ns}" / "payload.bin"
    payload.parent.mkdir()
    payload.write_bytes(random.Random(11).randbytes(4 * 1024 * 1024))
    share = lab.spawn(
        ns, "-m", "p2pshare", "share", str(payload), "--port", str(TCP_PORT), "--no-dht", "--json",
        env={"P2PSHARE_STATE_DIR": str(lab.workdir / f"state-{ns}")},
    )  # fmt: skip
    return payload, read_json_line(share, 60.0, "listening")


def share_get(lab: Lab, protocols: str, get_timeout: float = 60.0) -> dict[str, Any]:
    """h1 runs ``p2pshare share`` and maps its port; h2 runs ``p2pshare get --peer <r1's address>``.

    Neither uses the DHT: the point is that the mapping makes h1 reachable through two NATs.
    Times are from the start of ``get``: first peer connected, first verified bytes, done.
    """
    payload, listening = start_share(lab, "h1")
    args = ["portmap", "--tcp", str(TCP_PORT), "--udp", str(UDP_PORT), "--protocols", protocols, "--no-echo"]
    mapper = lab.spawn("h1", "-m", "tests.lab.agent", *args)
    settled = read_json_line(mapper, 40.0, "settled")
    ports = {m["protocol"]: m["external_port"] for m in settled["status"]["mappings"]}
    out = lab.workdir / "out-h2"
    peer = f"{R1_WAN}:{ports.get('tcp', TCP_PORT)}"
    final, exit_code, marks = run_get(
        lab, "h2", listening["info_hash"], peer, out, lab.workdir / "state-h2", get_timeout
    )
    fetched = out / payload.name
    send(mapper, "close")
    closed = read_json_line(mapper, 30.0, "closed")
    return {
        "mapped_ports": ports,
        "settled": settled,
        "final": final,
        "exit_code": exit_code,
        "marks": marks,
        "identical": fetched.exists() and fetched.read_bytes() == payload.read_bytes(),
        "closed": closed,
        "rules_after_close": miniupnpd_rules(lab),
    }


def share_ltget(lab: Lab, protocols: str) -> dict[str, Any]:
    """h1 shares with p2pshare and maps its port; libtorrent on h2 fetches the magnet from r1's address."""
    payload, listening = start_share(lab, "h1")
    args = ["portmap", "--tcp", str(TCP_PORT), "--udp", str(UDP_PORT), "--protocols", protocols, "--no-echo"]
    mapper = lab.spawn("h1", "-m", "tests.lab.agent", *args)
    settled = read_json_line(mapper, 40.0, "settled")
    ports = {m["protocol"]: m["external_port"] for m in settled["status"]["mappings"]}
    out = lab.workdir / "out-lt"
    out.mkdir()
    get = lab.spawn(
        "h2", "-m", "tests.lab.agent", "ltget", "--host", H2, "--info-hash", listening["info_hash"],
        "--peer", f"{R1_WAN}:{ports.get('tcp', TCP_PORT)}", "--out", str(out), "--timeout", "60",
    )  # fmt: skip
    result = read_json_line(get, 90.0, "ltget")
    fetched = out / payload.name
    result["identical"] = fetched.exists() and fetched.read_bytes() == payload.read_bytes()
    result["mapped_ports"] = ports
    send(mapper, "close")
    read_json_line(mapper, 30.0, "closed")
    result["rules_after_close"] = miniupnpd_rules(lab)
    return result


def lsd_get(lab: Lab) -> dict[str, Any]:
    """h1 shares and announces by LSD; h1b hears it and downloads from the address it heard (no DHT)."""
    payload, listening = start_share(lab, "h1")
    info_hash = listening["info_hash"]
    started = time.monotonic()
    listen = ("lsd", "--duration", "6", "--port", "6882", "--infohash", info_hash)
    heard = lab.spawn("h1b", "-m", "tests.lab.agent", *listen)
    read_json_line(heard, 30.0, "lsd-started")
    announce = ("lsd", "--duration", "2", "--port", str(listening["port"]), "--infohash", info_hash)
    lab.spawn("h1", "-m", "tests.lab.agent", *announce)
    found = read_json_line(heard, 30.0, "lsd")["found"]
    v4 = [p for p in found if ":" not in p["host"]]
    result: dict[str, Any] = {"found": found, "info_hash": info_hash, "h1": H1, "port": listening["port"]}
    if not v4:
        return result
    out = lab.workdir / "out-h1b"
    peer = f"{v4[0]['host']}:{v4[0]['port']}"
    final, exit_code, marks = run_get(lab, "h1b", info_hash, peer, out, lab.workdir / "state-h1b", 60.0)
    result.update(final=final, exit_code=exit_code, marks=marks, since_lsd_start=time.monotonic() - started)
    result["identical"] = (out / payload.name).exists() and (
        out / payload.name
    ).read_bytes() == payload.read_bytes()
    return result


def router_restart(lab: Lab) -> dict[str, Any]:
    """h1 maps over NAT-PMP/PCP; r1's miniupnpd restarts (losing every rule); h1 maps again by itself."""
    args = ["portmap", "--tcp", str(TCP_PORT), "--udp", str(UDP_PORT), "--protocols", "natpmp"]
    agent = lab.spawn("h1", "-m", "tests.lab.agent", *args)
    result: dict[str, Any] = {"settled": read_json_line(agent, 40.0, "settled")}
    result["rules_before"] = miniupnpd_rules(lab)
    # RFC 6886 3.6 tolerates 2 s of epoch drift, so a restart within ~2 s of the last answer
    # cannot be told from jitter; real reboots take longer: let the epoch run first.
    time.sleep(4.0)
    lab.restart_miniupnpd()
    restarted = time.monotonic()
    result["rules_right_after_restart"] = miniupnpd_rules(lab)
    while time.monotonic() - restarted < 20.0 and miniupnpd_rules(lab)["prerouting_miniupnpd"] < 2:
        time.sleep(0.1)
    result["remap_seconds"] = time.monotonic() - restarted
    result["rules_after"] = miniupnpd_rules(lab)
    result["probe"] = probe_from_h2(lab, TCP_PORT, UDP_PORT)
    send(agent, "close")
    result["closed"] = read_json_line(agent, 30.0, "closed")
    result["rules_after_close"] = miniupnpd_rules(lab)
    return result


GUARD_PROBE = """
import json, socket
from tests.netguard import NonLoopbackTraffic
out = {}
for name, addr in (("lab", ("11.11.0.2", 9)), ("outside", ("8.8.8.8", 53)), ("loopback", ("127.0.0.1", 9))):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(b"x", addr)
            out[name] = "sent"
        except NonLoopbackTraffic:
            out[name] = "refused"
        except OSError as exc:
            out[name] = "oserror:" + exc.__class__.__name__
print(json.dumps({"event": "guard", **out}), flush=True)
"""


def guard(lab: Lab) -> dict[str, Any]:
    """A Python process in h1 tries a lab address, an outside address and loopback."""
    return read_json_line(lab.spawn("h1", "-c", GUARD_PROBE), 30.0, "guard")


SCENARIOS: dict[str, Callable[[Lab], dict[str, Any]]] = {
    "portmap": portmap,
    "portmap-upnp": lambda lab: portmap(lab, "upnp"),
    "portmap-natpmp": lambda lab: portmap(lab, "natpmp"),
    "portmap-natpmp-v0": lambda lab: portmap(lab, "natpmp", pcp=False),
    "portmap-renew": lambda lab: portmap(lab, "upnp", renew=True),
    "portmap-conflict-upnp": lambda lab: portmap_conflict(lab, "upnp"),
    "portmap-conflict-natpmp": lambda lab: portmap_conflict(lab, "natpmp"),
    "share-get-upnp": lambda lab: share_get(lab, "upnp"),
    "share-get-natpmp": lambda lab: share_get(lab, "natpmp"),
    "share-get-none": lambda lab: share_get(lab, "natpmp,upnp", get_timeout=8.0),
    "share-ltget-upnp": lambda lab: share_ltget(lab, "upnp"),
    "router-restart": router_restart,
    "lsd": lsd,
    "lsd-get": lsd_get,
    "guard": guard,
}
