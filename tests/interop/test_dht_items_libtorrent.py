"""BEP 44 across engines on loopback: libtorrent reads items p2pshare stored, and p2pshare reads libtorrent's.

The libtorrent settings that make its DHT work on loopback are explained in
``test_dht_libtorrent.py``.  libtorrent's Python binding signs with a 64-byte
"expanded" ed25519 secret key (as in BEP 44's test vectors): SHA-512 of the 32-byte
seed with the scalar half clamped; from the same seed, both engines derive the same
public key and the same signatures.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import pytest

from p2pshare.config import DhtConfig
from p2pshare.core.dht.items import mutable_target, public_key_of, sign_mutable
from p2pshare.engine.dht_node import DhtService

lt = pytest.importorskip("libtorrent")

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

CFG = DhtConfig(bootstrap=())


def lt_secret_key(seed: bytes) -> bytes:
    """libtorrent's 64-byte secret key for a 32-byte ed25519 seed (SHA-512, scalar clamped)."""
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return bytes(h)


class LtItemNode:
    """A libtorrent session with only its DHT on, bound to one loopback IP, that records item alerts."""

    def __init__(self, host: str, bootstrap: str) -> None:
        self.host = host
        self.ses = lt.session(
            {
                "listen_interfaces": f"{host}:0",
                "outgoing_interfaces": host,
                "enable_dht": True,
                "dht_bootstrap_nodes": bootstrap,
                "enable_lsd": False,
                "enable_upnp": False,
                "enable_natpmp": False,
                "dht_restrict_routing_ips": False,
                "dht_restrict_search_ips": False,
                "dht_prefer_verified_node_ids": False,
                "dht_enforce_node_id": False,
                "dht_ignore_dark_internet": False,
                "alert_mask": lt.alert_category.dht | lt.alert_category.stats,
            }
        )
        self.dht_nodes = 0
        self.mutable: list[Any] = []
        self.immutable: list[Any] = []
        self.puts: list[Any] = []

    def poll(self) -> None:
        self.ses.post_session_stats()
        for a in self.ses.pop_alerts():
            if isinstance(a, lt.session_stats_alert):
                self.dht_nodes = int(a.values.get("dht.dht_nodes", 0))
            elif isinstance(a, lt.dht_mutable_item_alert):
                self.mutable.append((bytes(a.key), bytes(a.salt), int(a.seq), a.item, bytes(a.signature)))
            elif isinstance(a, lt.dht_immutable_item_alert):
                self.immutable.append((a.target.to_bytes(), a.item))
            elif isinstance(a, lt.dht_put_alert):
                # A mutable put reports its public key and salt; its target field stays zero.
                key = bytes(a.public_key)
                target = mutable_target(key, bytes(a.salt)) if any(key) else a.target.to_bytes()
                self.puts.append((target, int(a.num_success)))

    @property
    def port(self) -> int:
        return int(self.ses.listen_port())


async def poll_until(nodes: list[LtItemNode], predicate: Any, timeout: float) -> bool:
    """Poll the sessions every 0.1 s until ``predicate()`` holds or ``timeout`` s pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for n in nodes:
            n.poll()
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_libtorrent_reads_items_p2pshare_stored() -> None:
    """libtorrent's dht_get_mutable_item / dht_get_immutable_item read items our nodes put."""
    boot = await DhtService.start(host="127.0.0.70", bootstrap=[], state_dir=None, config=CFG)
    services = [boot]
    node: LtItemNode | None = None
    try:
        services += await asyncio.gather(
            *(
                DhtService.start(host=f"127.0.0.{i}", bootstrap=[boot.address], state_dir=None, config=CFG)
                for i in range(71, 82)
            )
        )
        assert all(await asyncio.gather(*(s.wait_ready(10) for s in services)))
        seed = os.urandom(32)
        pk = public_key_of(seed)
        mut = await services[4].put_mutable(seed, b"hello from p2pshare", 5, b"salt", timeout=10)
        imm = await services[6].put_immutable(b"immutable from p2pshare", timeout=10)
        assert mut.stored >= 3 and imm.stored >= 3
        node = LtItemNode("127.0.0.90", f"127.0.0.70:{boot.port}")
        n = node
        assert await poll_until([n], lambda: n.dht_nodes >= 3, 20), "libtorrent did not join our DHT"
        n.ses.dht_get_mutable_item(pk, b"salt")
        n.ses.dht_get_immutable_item(lt.sha1_hash(imm.target))
        want_sig = sign_mutable(seed, b"hello from p2pshare", 5, b"salt").sig

        def got_both() -> bool:
            mutable_ok = any(m[2] == 5 and m[3] == b"hello from p2pshare" for m in n.mutable)
            return mutable_ok and any(i[1] == b"immutable from p2pshare" for i in n.immutable)

        assert await poll_until([n], got_both, 20), (n.mutable, n.immutable)
        assert any(m[0] == pk and m[1] == b"salt" and m[4] == want_sig for m in n.mutable)
    finally:
        await asyncio.gather(*(s.close() for s in services))
        if node is not None:
            del node.ses


async def test_p2pshare_reads_items_libtorrent_put() -> None:
    """In a DHT that holds libtorrent nodes, our get_item reads libtorrent's mutable and immutable puts."""
    seed_svc = await DhtService.start(host="127.0.0.100", bootstrap=[], state_dir=None, config=CFG)
    services = [seed_svc]
    nodes: list[LtItemNode] = []
    try:
        for i in range(101, 104):
            services.append(
                await DhtService.start(
                    host=f"127.0.0.{i}", bootstrap=[seed_svc.address], state_dir=None, config=CFG
                )
            )
        assert all(await asyncio.gather(*(s.wait_ready(5) for s in services)))
        nodes = [LtItemNode(f"127.0.0.{105 + i}", f"127.0.0.100:{seed_svc.port}") for i in range(6)]
        assert await poll_until(nodes, lambda: all(n.dht_nodes >= 3 for n in nodes), 20), [
            n.dht_nodes for n in nodes
        ]
        seed = os.urandom(32)
        pk = public_key_of(seed)
        nodes[2].ses.dht_put_mutable_item(lt_secret_key(seed), pk, b"hello from libtorrent", b"ltsalt")
        target = nodes[4].ses.dht_put_immutable_item(b"immutable from libtorrent").to_bytes()
        mtarget = mutable_target(pk, b"ltsalt")
        assert await poll_until(
            nodes,
            lambda: {t for t, ok in nodes[2].puts + nodes[4].puts if ok} >= {target, mtarget},
            20,
        ), (nodes[2].puts, nodes[4].puts)
        # Some of libtorrent's puts landed on our nodes: our put handling accepted its tokens and signatures.
        held = [s for s in services if s.endpoint.node.items.get(mtarget, s.endpoint.now()) is not None]
        assert held, [s.status()["stored_items"] for s in services]
        # Our reader enters through a libtorrent node.
        ours = await DhtService.start(
            host="127.0.0.115", bootstrap=[("127.0.0.105", nodes[0].port)], state_dir=None, config=CFG
        )
        services.append(ours)
        assert await ours.wait_ready(10)
        item = await ours.get_item((pk, b"ltsalt"), timeout=10)
        assert item is not None and item.seq == 1 and item.decoded() == b"hello from libtorrent"
        imm = await ours.get_item(target, timeout=10)
        assert imm is not None and imm.decoded() == b"immutable from libtorrent"
    finally:
        await asyncio.gather(*(s.close() for s in services))
        for n in nodes:
            del n.ses
