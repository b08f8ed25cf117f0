"""Node ids (BEP 42), write tokens and the peer store."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from p2pshare.config import DhtConfig
from p2pshare.core.dht.ids import crc32c, distance, is_bep42_exempt, is_secure_id, random_id, secure_id
from p2pshare.core.dht.peer_store import PeerStore
from p2pshare.core.dht.tokens import TokenManager

# BEP 42 test vectors: IP, r, first three bytes of the example id.
VECTORS = [
    ("124.31.75.21", 1, "5fbfbf"),
    ("21.75.31.124", 86, "5a3ce9"),
    ("65.23.51.170", 22, "a5d432"),
    ("84.124.73.14", 65, "1b0321"),
    ("43.213.53.83", 90, "e56f6c"),
]


def test_crc32c_check_value() -> None:
    """CRC-32C of "123456789" is the standard check value 0xE3069283."""
    assert crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize(("ip", "r", "prefix"), VECTORS)
def test_bep42_vectors_are_secure(ip: str, r: int, prefix: str) -> None:
    """The BEP 42 example ids satisfy the check for their IP, and fail for another IP."""
    node_id = bytes.fromhex(prefix) + bytes(16) + bytes((r,))
    assert is_secure_id(node_id, ip)
    assert not is_secure_id(node_id, "1.1.1.1" if ip != "1.1.1.1" else "2.2.2.2")


def test_generated_secure_ids_verify() -> None:
    """secure_id produces ids that pass is_secure_id for the same public IP (v4 and v6)."""
    rng = random.Random(5)
    for ip in ("124.31.75.21", "8.8.4.4", "2001:4860::8888"):
        for _ in range(20):
            assert is_secure_id(secure_id(ip, rng), ip)


def test_local_addresses_are_exempt() -> None:
    """Loopback and private addresses are exempt from BEP 42, so any id is accepted."""
    assert is_bep42_exempt("127.0.0.5") and is_bep42_exempt("10.1.2.3") and is_bep42_exempt("192.168.0.1")
    assert not is_bep42_exempt("8.8.8.8")
    assert is_secure_id(bytes(20), "127.0.0.1")


def test_distance_is_xor() -> None:
    """Distance is the XOR of ids read as integers; zero only to itself."""
    a, b = random_id(random.Random(1)), random_id(random.Random(2))
    assert distance(a, a) == 0
    assert distance(a, b) == distance(b, a) == int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def _tokens() -> TokenManager:
    rng = random.Random(3)
    return TokenManager(300.0, 0.0, lambda n: rng.randbytes(n))


def test_token_valid_for_same_ip_only() -> None:
    """A token works for the IP it was issued to and not for another."""
    tm = _tokens()
    tok = tm.token_for("1.2.3.4", 0.0)
    assert tm.is_valid(tok, "1.2.3.4", 10.0)
    assert not tm.is_valid(tok, "1.2.3.5", 10.0)


def test_token_survives_one_rotation_not_two() -> None:
    """After one rotation the previous secret is still accepted; after two it is not."""
    tm = _tokens()
    tok = tm.token_for("1.2.3.4", 0.0)
    assert tm.is_valid(tok, "1.2.3.4", 301.0)
    assert not tm.is_valid(tok, "1.2.3.4", 601.0)


def test_token_expires_after_long_silence() -> None:
    """A jump of many rotation periods invalidates old tokens at once."""
    tm = _tokens()
    tok = tm.token_for("1.2.3.4", 0.0)
    assert not tm.is_valid(tok, "1.2.3.4", 10_000.0)


CFG = replace(DhtConfig(), max_peers_per_hash=3, max_stored_peers=5, max_info_hashes=2, peer_ttl=100.0)


def test_peer_store_expires_entries() -> None:
    """Stored peers disappear after peer_ttl unless re-announced."""
    store = PeerStore(CFG)
    rng = random.Random(0)
    store.add(b"h" * 20, ("1.1.1.1", 1), 0.0)
    store.add(b"h" * 20, ("2.2.2.2", 2), 50.0)
    assert len(store.get(b"h" * 20, 60.0, 10, rng)) == 2
    assert store.get(b"h" * 20, 120.0, 10, rng) == [("2.2.2.2", 2)]
    assert store.expire(200.0) == 2 and len(store) == 0 and store.info_hash_count == 0


def test_peer_store_caps() -> None:
    """Per-hash cap evicts the oldest; total and info-hash caps refuse newcomers."""
    store = PeerStore(CFG)
    rng = random.Random(0)
    h1, h2, h3 = b"a" * 20, b"b" * 20, b"c" * 20
    for i in range(4):
        assert store.add(h1, ("1.1.1.1", i + 1), float(i))
    assert sorted(p[1] for p in store.get(h1, 5.0, 10, rng)) == [2, 3, 4]
    assert store.add(h2, ("2.2.2.2", 1), 5.0) and store.add(h2, ("2.2.2.2", 2), 5.0)
    assert not store.add(h2, ("2.2.2.2", 3), 5.0)  # 5 stored in total
    assert not store.add(h3, ("3.3.3.3", 1), 5.0)  # two info hashes already
    assert store.add(h2, ("2.2.2.2", 2), 6.0)  # a refresh is always fine
    assert len(store) == 5


def test_peer_store_samples_at_most_limit() -> None:
    """get returns at most the requested number of peers."""
    store = PeerStore(replace(DhtConfig(), max_peers_per_hash=100))
    for i in range(60):
        store.add(b"h" * 20, ("1.1.1.1", i + 1), 0.0)
    assert len(store.get(b"h" * 20, 1.0, 50, random.Random(1))) == 50
