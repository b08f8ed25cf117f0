"""Tests for the choker: tit-for-tat, optimistic unchoke, and round-robin seeding."""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import replace

from p2pshare.config import ChokerConfig
from p2pshare.core.choker import ChokeDecision, Choker, PeerStats

CONFIG = ChokerConfig()


def peer(
    key: Hashable, down: float = 0.0, *, up: float = 0.0, interested: bool = True, **kw: bool
) -> PeerStats:
    return PeerStats(key, interested=interested, download_rate=down, upload_rate=up, **kw)


class Swarm:
    """Peers whose choke state follows the choker's decisions, as the engine would apply them."""

    def __init__(self, peers: Sequence[PeerStats], seed: int = 0, config: ChokerConfig = CONFIG) -> None:
        self.peers = {p.key: p for p in peers}
        self.choker = Choker(config, random.Random(seed))

    def rechoke(self, now: float, seeding: bool = False) -> ChokeDecision:
        decision = self.choker.rechoke(list(self.peers.values()), now, seeding)
        assert set(decision.unchoke).isdisjoint(decision.choke)
        for key, p in self.peers.items():
            self.peers[key] = replace(p, am_choking=key not in decision.unchoked)
        return decision


def test_tit_for_tat_unchokes_top_four_downloaders() -> None:
    """The four interested peers that give us the most are unchoked, plus one optimistic other."""
    swarm = Swarm([peer(i, down=100.0 * i) for i in range(10)])
    decision = swarm.rechoke(0.0)
    assert {9, 8, 7, 6} <= decision.unchoked
    assert len(decision.unchoked) == 5
    [optimistic] = decision.optimistic
    assert optimistic not in {9, 8, 7, 6}
    assert set(decision.unchoke) == decision.unchoked and decision.choke == ()


def test_rechoke_follows_rate_changes() -> None:
    """At the next rechoke a peer that became faster takes the slot of the slowest regular peer."""
    swarm = Swarm([peer(i, down=100.0 * i) for i in range(6)], config=replace(CONFIG, optimistic_slots=0))
    swarm.rechoke(0.0)
    swarm.peers[0] = replace(swarm.peers[0], download_rate=10_000.0)
    decision = swarm.rechoke(10.0)
    assert decision.unchoke == (0,) and decision.choke == (2,)
    assert decision.unchoked == {0, 5, 4, 3}


def test_uninterested_peers_do_not_take_slots() -> None:
    """Uninterested peers never use up a slot: the four best interested peers are unchoked regardless."""
    peers = [peer(f"u{i}", down=1000.0 + i, interested=False) for i in range(6)]
    peers += [peer(i, down=10.0 * i) for i in range(1, 7)]
    peers.append(peer("slow-uninterested", down=0.0, interested=False))
    decision = Swarm(peers, config=replace(CONFIG, optimistic_slots=0)).rechoke(0.0)
    assert {6, 5, 4, 3} <= decision.unchoked
    assert {f"u{i}" for i in range(6)} <= decision.unchoked  # faster than the slots: unchoked (BEP 3)
    assert "slow-uninterested" not in decision.unchoked
    assert 1 not in decision.unchoked and 2 not in decision.unchoked


def test_snubbed_peers_get_no_regular_slot() -> None:
    """A snubbed peer is skipped for regular slots however fast it once was."""
    peers = [peer("snub", down=1e6, snubbed=True)] + [peer(i, down=10.0 * i) for i in range(1, 6)]
    decision = Swarm(peers, config=replace(CONFIG, optimistic_slots=0)).rechoke(0.0)
    assert decision.unchoked == {5, 4, 3, 2}


def test_optimistic_rotates_after_30s_not_before() -> None:
    """The optimistic unchoke stays for 30 seconds across rechokes and then moves to another peer."""
    swarm = Swarm([peer(i, down=100.0 * i) for i in range(10)], seed=3)
    first = swarm.rechoke(0.0).optimistic
    assert swarm.choker.get_timer() == 10.0
    assert swarm.rechoke(10.0).optimistic == first
    assert swarm.rechoke(20.0).optimistic == first
    assert swarm.rechoke(29.9).optimistic == first
    after = swarm.rechoke(30.0).optimistic
    assert after and after != first
    assert swarm.choker.next_rechoke(35.0) == 40.0


def test_optimistic_replaced_when_it_leaves_or_loses_interest() -> None:
    """An optimistic peer that disconnects or loses interest is replaced at the next rechoke."""
    swarm = Swarm([peer(i, down=100.0 * i) for i in range(8)], seed=1)
    [first] = swarm.rechoke(0.0).optimistic
    del swarm.peers[first]
    [second] = swarm.rechoke(10.0).optimistic
    assert second != first
    swarm.peers[second] = replace(swarm.peers[second], interested=False)
    decision = swarm.rechoke(20.0)
    assert decision.optimistic and decision.optimistic[0] != second
    assert second in decision.choke


def test_new_peers_are_three_times_as_likely_optimistic() -> None:
    """A newly seen peer is about three times as likely as an old one to get the optimistic slot."""
    config = replace(CONFIG, regular_slots=0)
    hits = 0
    trials = 400
    for seed in range(trials):
        choker = Choker(config, random.Random(seed))
        old = [peer(i) for i in range(3)]
        choker.rechoke(old, 0.0, False)  # first seen at 0
        decision = choker.rechoke([*old, peer("new")], 100.0, False)  # rotation due; "new" seen now
        hits += decision.optimistic == ("new",)
    # weights 3 : 1+1+1 (the previous optimistic is excluded, so 3 : 2 at most) -> 0.5 .. 0.6
    assert 0.4 < hits / trials < 0.7


def test_seed_mode_round_robin_serves_everyone() -> None:
    """Seeding with more interested peers than slots, every one of them is unchoked within a few turns."""
    swarm = Swarm([peer(i, up=1000.0 * i) for i in range(12)], seed=5)
    served: set[Hashable] = set()
    for step in range(10):
        decision = swarm.rechoke(10.0 * step, seeding=True)
        assert len(decision.unchoked) <= CONFIG.regular_slots + CONFIG.optimistic_slots
        served |= decision.unchoked
    assert served == set(range(12))


def test_seed_mode_keeps_a_turn_then_rotates() -> None:
    """A seeding slot is kept for seed_turn seconds and then given to a peer that has waited."""
    config = replace(CONFIG, regular_slots=2, optimistic_slots=0)
    swarm = Swarm([peer(i, up=float(i)) for i in range(4)], config=config)
    first = swarm.rechoke(0.0, seeding=True).unchoked
    assert swarm.rechoke(10.0, seeding=True).unchoked == first
    assert swarm.rechoke(20.0, seeding=True).unchoked == first
    rotated = swarm.rechoke(30.0, seeding=True)
    assert rotated.unchoked == set(range(4)) - first
    assert set(rotated.choke) == first


def test_seed_mode_fastest_keep_slots_when_nobody_waits() -> None:
    """When no interested peer is waiting, the peers we upload to fastest keep their slots."""
    config = replace(CONFIG, regular_slots=2, optimistic_slots=0)
    swarm = Swarm([peer(i, up=float(i)) for i in range(2)], config=config)
    swarm.rechoke(0.0, seeding=True)
    assert swarm.rechoke(40.0, seeding=True).unchoked == {0, 1}


def test_seed_mode_ignores_uninterested_peers() -> None:
    """Seeding, uninterested peers are choked and take no slot."""
    peers = [peer(i, up=1e6, interested=False, am_choking=False) for i in range(3)] + [peer("x", up=1.0)]
    decision = Swarm(peers).rechoke(0.0, seeding=True)
    assert decision.unchoked == {"x"}
    assert set(decision.choke) == {0, 1, 2}


def test_timer_is_due_before_first_rechoke() -> None:
    """A fresh choker asks to be run at once, then every rechoke_interval."""
    choker = Choker(CONFIG, random.Random(0))
    assert choker.get_timer() is None and choker.due(5.0) and choker.next_rechoke(5.0) == 5.0
    choker.rechoke([], 5.0, False)
    assert choker.get_timer() == 15.0 and not choker.due(14.0) and choker.due(15.0)
