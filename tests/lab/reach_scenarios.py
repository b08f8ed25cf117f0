"""Issue 11's scenarios, with p2pshare's own port mapping and LSD (as a user runs it: defaults on).

One lab build serves several scenarios (CI time): ``reach`` on the ``both`` variant runs
(a) h2 gets by hash through the DHT, (b) h1b gets through LSD with no DHT, (c) libtorrent on
h2 fetches the magnet ``share`` printed (its ``x.pe`` is r1's mapped address), (d) doctor on
h1 and on h2 while a node on the "internet" knocks, and (e) r1's miniupnpd rules once
``share`` has exited.  ``reach-get`` on the ``upnp`` and ``natpmp`` variants runs (a) and (e).
Times are measured when each event arrives (every process is read at once), from the
start of the downloader.
"""

from __future__ import annotations

import json
import random
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.lab.netlab import H2, INET_HOST, R1_WAN, R2_WAN, Lab
from tests.lab.scenarios import TCP_PORT, miniupnpd_rules, read_json_line

__all__ = ["SCENARIOS"]

DHT_PORT = 6881  #: the "internet"'s DHT node on INET_HOST
KNOCKER = "11.11.0.101"  #: a second "internet" host, never contacted by anyone
DOCTOR_PORTS = {"h1": 46883, "h2": 46884}
PAYLOAD = 4 * 1024 * 1024


def start_dht(lab: Lab) -> str:
    """A p2pshare DHT node on the lab's internet: the bootstrap every host is given."""
    node = lab.spawn(
        "inet",
        "-m",
        "p2pshare",
        "dht",
        "--host",
        INET_HOST,
        "--port",
        str(DHT_PORT),
        "--no-bootstrap",
        "--json",
    )
    read_json_line(node, 30.0, "listening")
    return f"{INET_HOST}:{DHT_PORT}"


def start_share(lab: Lab, boot: str | None) -> tuple[subprocess.Popen[str], Path, dict[str, Any]]:
    """``p2pshare share`` of 4 MiB on h1 with the defaults (port mapping and LSD on)."""
    payload = lab.workdir / "share-h1" / "payload.bin"
    payload.parent.mkdir()
    payload.write_bytes(random.Random(11).randbytes(PAYLOAD))
    dht = ["--bootstrap", boot] if boot else ["--no-dht"]
    share = lab.spawn(
        "h1", "-m", "p2pshare", "share", str(payload), "--port", str(TCP_PORT), *dht, "--json",
        env={"P2PSHARE_STATE_DIR": str(lab.workdir / "state-h1")},
    )  # fmt: skip
    return share, payload, read_json_line(share, 60.0, "listening")


def spawn_get(lab: Lab, ns: str, info_hash: str, boot: str | None, timeout: float) -> subprocess.Popen[str]:
    out = lab.workdir / f"out-{ns}"
    dht = ["--bootstrap", boot] if boot else ["--no-dht"]
    return lab.spawn(
        ns, "-m", "p2pshare", "get", info_hash, *dht, "--json", "-o", str(out), "--timeout", str(timeout),
        env={"P2PSHARE_STATE_DIR": str(lab.workdir / f"state-{ns}")},
    )  # fmt: skip


def follow(procs: dict[str, subprocess.Popen[str]], timeout: float) -> dict[str, dict[str, Any]]:
    """Read every process's JSON lines as they come until each prints its last one (or exits).

    For each: ``marks`` (seconds from now: first_peer, first_byte, end; first_byte is the
    manifest's arrival for a get by hash, its first payload from a peer), ``final`` (the done,
    error, doctor or ltget object) and ``exit_code``.
    """
    started = time.monotonic()
    facts: dict[str, dict[str, Any]] = {name: {"marks": {}, "final": None} for name in procs}
    open_ = dict(procs)
    with selectors.DefaultSelector() as sel:
        for name, proc in procs.items():
            assert proc.stdout is not None
            sel.register(proc.stdout, selectors.EVENT_READ, name)
        while open_ and (remaining := started + timeout - time.monotonic()) > 0:
            for key, _ in sel.select(remaining):
                name = key.data
                line = procs[name].stdout.readline()  # type: ignore[union-attr]
                now = time.monotonic() - started
                if not line:
                    sel.unregister(key.fileobj)
                    open_.pop(name, None)
                    continue
                if not line.startswith("{"):
                    continue
                event = json.loads(line)
                kind, marks = event.get("event"), facts[name]["marks"]
                if kind == "peer_connected":
                    marks.setdefault("first_peer", now)
                elif kind == "metadata" or (kind == "progress" and event.get("downloaded", 0) > 0):
                    marks.setdefault("first_byte", now)  # the manifest (BEP 9) is the first payload
                elif kind in ("done", "error", "doctor", "ltget"):
                    marks["end"] = now
                    facts[name]["final"] = event
                    sel.unregister(key.fileobj)
                    open_.pop(name, None)
    for name, proc in procs.items():
        try:
            facts[name]["exit_code"] = proc.wait(30.0)
        except subprocess.TimeoutExpired:
            facts[name]["exit_code"] = None
    return facts


def stop_share(lab: Lab, share: subprocess.Popen[str]) -> dict[str, Any]:
    """Ctrl-C the share (as a user does) and look at r1 once it has exited: (e)."""
    share.send_signal(signal.SIGINT)
    began = time.monotonic()
    try:
        code: int | None = share.wait(30.0)
    except subprocess.TimeoutExpired:
        code = None
    return {"exit_code": code, "exit_seconds": time.monotonic() - began, "rules": miniupnpd_rules(lab)}


def identical(lab: Lab, ns: str, payload: Path) -> bool:
    fetched = lab.workdir / f"out-{ns}" / payload.name
    return fetched.exists() and fetched.read_bytes() == payload.read_bytes()


def reach_get(lab: Lab) -> dict[str, Any]:
    """(a) and (e): share on h1 (mapping on), get on h2 by hash through the DHT; then share exits."""
    boot = start_dht(lab)
    share, payload, listening = start_share(lab, boot)
    rules_while_sharing = miniupnpd_rules(lab)
    facts = follow({"h2": spawn_get(lab, "h2", listening["info_hash"], boot, 60.0)}, 90.0)
    return {
        "listening": listening,
        "rules_while_sharing": rules_while_sharing,
        "get": facts["h2"],
        "identical": identical(lab, "h2", payload),
        "after_exit": stop_share(lab, share),
    }


def reach(lab: Lab) -> dict[str, Any]:
    """(a)-(e) on one lab: see the module docstring."""
    lab.nsrun("inet", "ip", "addr", "add", f"{KNOCKER}/24", "dev", "br0")
    boot = start_dht(lab)
    share, payload, listening = start_share(lab, boot)
    info_hash = listening["info_hash"]
    rules_while_sharing = miniupnpd_rules(lab)
    lt_out = lab.workdir / "out-lt"
    lt_out.mkdir()
    public = listening.get("public") or f"{R1_WAN}:{TCP_PORT}"
    doctor = ["-m", "p2pshare", "doctor", "--bootstrap", boot, "--json", "--wait", "12"]
    knock = ["-m", "tests.lab.agent", "knock", "--source", KNOCKER, "--duration", "25"]
    procs = {
        "h2": spawn_get(lab, "h2", info_hash, boot, 60.0),
        "h1b": spawn_get(lab, "h1b", info_hash, None, 60.0),
        "lt": lab.spawn(
            "h2", "-m", "tests.lab.agent", "ltget", "--host", H2, "--info-hash", info_hash,
            "--peer", public, "--out", str(lt_out), "--timeout", "60",
        ),
        "doctor-h1": lab.spawn("h1", *doctor, "--port", str(DOCTOR_PORTS["h1"])),
        "doctor-h2": lab.spawn("h2", *doctor, "--port", str(DOCTOR_PORTS["h2"])),
    }  # fmt: skip
    for host, port in ((R1_WAN, DOCTOR_PORTS["h1"]), (R2_WAN, DOCTOR_PORTS["h2"])):
        lab.spawn("inet", *knock, "--host", host, "--tcp", str(port), "--udp", str(port))
    facts = follow(procs, 85.0)
    lt_file = lt_out / payload.name
    return {
        "listening": listening,
        "rules_while_sharing": rules_while_sharing,
        **facts,
        "identical": {
            "h2": identical(lab, "h2", payload),
            "h1b": identical(lab, "h1b", payload),
            "lt": lt_file.exists() and lt_file.read_bytes() == payload.read_bytes(),
        },
        "after_exit": stop_share(lab, share),
    }


SCENARIOS: dict[str, Callable[[Lab], dict[str, Any]]] = {"reach": reach, "reach-get": reach_get}
