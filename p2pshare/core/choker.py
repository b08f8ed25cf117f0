"""The choker: which peers we upload to (BEP 3 "Choking and optimistic unchoking").

Theory of operation
-------------------
The engine calls :meth:`Choker.rechoke` with a snapshot of every connected peer
(:class:`PeerStats`) when :meth:`Choker.get_timer` is due, and may call it early
(e.g. when an unchoked peer becomes interested, or one leaves).  The answer is a
:class:`ChokeDecision`: whom to unchoke, whom to choke.  The choker keeps only the
little history it needs (optimistic peers, when each peer was first seen, seeding
turns), all keyed by ``PeerStats.key`` and pruned to the peers it was last shown.

Regular slots, downloading (tit-for-tat)
    Peers that are not snubbed are ranked by the rate they give us (ties: currently
    unchoked first, so we do not fibrillate, then random).  Walking down that list we
    unchoke each peer until ``regular_slots`` *interested* peers are unchoked.
    Uninterested peers met on the way are unchoked too but take no slot (BEP 3: "peers
    which have a better upload rate but aren't interested get unchoked"); the engine
    should rechoke early when one of them becomes interested.

Regular slots, seeding (round robin, fastest first)
    Every interested peer gets a turn of ``seed_turn`` seconds.  A peer in its turn
    keeps its slot; free slots go first to choked peers that have waited longest since
    their last turn (never-served first), then to peers whose turn is over, fastest
    upload rate first (they take data fastest).  So slots rotate through everyone when
    there are more interested peers than slots, and the fastest peers keep them when
    there are not.  Uninterested peers are choked.

Optimistic slots (both modes)
    ``optimistic_slots`` (1) interested peers outside the regular set are unchoked
    regardless of rate, re-chosen every ``optimistic_interval`` (30 s), or at once when
    the current one leaves or loses interest.  Between rotations an optimistic peer is
    kept out of the regular ranking; at a rotation it competes for a regular slot like
    everyone else before the new optimistic peer is drawn.  Snubbed peers are eligible.
    A peer first seen less than ``new_peer_seconds`` ago is three times as likely to be
    chosen (BEP 3), and the previous optimistic peer is not re-chosen while any other
    candidate exists.

The choker does no I/O and reads no clock: ``now`` is a parameter and randomness
comes from the ``random.Random`` it is given.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from p2pshare.config import ChokerConfig

__all__ = ["ChokeDecision", "Choker", "PeerStats"]

_NEW_PEER_WEIGHT = 3

#: The engine's name for a peer: any hashable (a connection object, an address, an id).
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class PeerStats(Generic[K]):
    """One peer as the choker sees it at a rechoke."""

    key: K
    interested: bool  #: the peer is interested in us
    download_rate: float  #: bytes/s it sends us
    upload_rate: float  #: bytes/s we send it
    snubbed: bool = False  #: it has not sent us a block for a long while
    am_choking: bool = True  #: we currently choke it


@dataclass(frozen=True, slots=True)
class ChokeDecision(Generic[K]):
    """The outcome of a rechoke: messages to send and the resulting upload set."""

    unchoke: tuple[K, ...]  #: currently choked, to be unchoked now
    choke: tuple[K, ...]  #: currently unchoked, to be choked now
    unchoked: frozenset[K]  #: every peer unchoked after this decision
    optimistic: tuple[K, ...]  #: the optimistic unchoke(s) among them


class Choker(Generic[K]):
    """Tit-for-tat unchoking with an optimistic slot; round-robin when seeding."""

    def __init__(self, config: ChokerConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._next_rechoke: float | None = None
        self._next_optimistic: float | None = None
        self._optimistic: list[K] = []
        self._first_seen: dict[K, float] = {}
        self._turn_start: dict[K, float] = {}  # seeding: when its current turn began
        self._last_turn: dict[K, float] = {}  # seeding: when it last had a slot

    # ------------------------------------------------------------------ timer

    def get_timer(self) -> float | None:
        """When the next rechoke is due (absolute); None: never rechoked, do it now."""
        return self._next_rechoke

    def next_rechoke(self, now: float) -> float:
        """When the next rechoke is due, never earlier than ``now``."""
        if self._next_rechoke is None:
            return now
        return max(now, self._next_rechoke)

    def due(self, now: float) -> bool:
        return self._next_rechoke is None or now >= self._next_rechoke

    @property
    def optimistic(self) -> tuple[K, ...]:
        return tuple(self._optimistic)

    # ------------------------------------------------------------------ decision

    def rechoke(self, peers: Sequence[PeerStats], now: float, seeding: bool) -> ChokeDecision:
        """Decide who is unchoked from now on; also re-arms the timer."""
        config = self._config
        by_key = {p.key: p for p in peers}
        self._forget_gone(by_key, now)
        tie = {p.key: self._rng.random() for p in peers}

        rotate = self._next_optimistic is None or now >= self._next_optimistic
        if rotate:
            self._next_optimistic = now + config.optimistic_interval
            previous = set(self._optimistic)
            self._optimistic = []
        else:
            previous = set()
            self._optimistic = [k for k in self._optimistic if k in by_key and by_key[k].interested]

        keep_out = set(self._optimistic)
        if seeding:
            regular = self._seed_slots(peers, keep_out, now, tie)
        else:
            regular = self._leech_slots(peers, keep_out, tie)
        regular_interested = {k for k in regular if by_key[k].interested}

        if len(self._optimistic) < config.optimistic_slots:
            candidates = [
                p
                for p in peers
                if p.interested and p.key not in regular_interested and p.key not in self._optimistic
            ]
            fresh = [p for p in candidates if p.key not in previous]
            pool = fresh or candidates
            while pool and len(self._optimistic) < config.optimistic_slots:
                chosen = self._weighted_choice(pool, now)
                self._optimistic.append(chosen.key)
                pool = [p for p in pool if p.key != chosen.key]

        unchoked = set(regular) | set(self._optimistic)
        if seeding:
            for key in unchoked:
                if by_key[key].am_choking or key not in self._turn_start:
                    self._turn_start[key] = now
                self._last_turn[key] = now
            for key in list(self._turn_start):
                if key not in unchoked:
                    del self._turn_start[key]
        self._next_rechoke = now + config.rechoke_interval
        return ChokeDecision(
            unchoke=tuple(p.key for p in peers if p.am_choking and p.key in unchoked),
            choke=tuple(p.key for p in peers if not p.am_choking and p.key not in unchoked),
            unchoked=frozenset(unchoked),
            optimistic=tuple(self._optimistic),
        )

    def _leech_slots(self, peers: Sequence[PeerStats], keep_out: set[K], tie: dict[K, float]) -> list[K]:
        ranked = sorted(
            (p for p in peers if not p.snubbed and p.key not in keep_out),
            key=lambda p: (-p.download_rate, p.am_choking, tie[p.key]),
        )
        chosen: list[K] = []
        slots = self._config.regular_slots
        filled = 0
        for p in ranked:
            if filled >= slots:
                break
            chosen.append(p.key)
            if p.interested:
                filled += 1
        return chosen

    def _seed_slots(
        self, peers: Sequence[PeerStats], keep_out: set[K], now: float, tie: dict[K, float]
    ) -> list[K]:
        turn = self._config.seed_turn

        def rank(p: PeerStats) -> tuple[int, float, float]:
            started = self._turn_start.get(p.key)
            if not p.am_choking and started is not None and now - started < turn:
                return (0, -p.upload_rate, tie[p.key])  # in its turn: keeps the slot
            if p.am_choking:
                waited_since = self._last_turn.get(p.key, float("-inf"))
                return (1, waited_since, tie[p.key])  # longest wait first
            return (2, -p.upload_rate, tie[p.key])  # turn over: fastest first

        ranked = sorted((p for p in peers if p.interested and p.key not in keep_out), key=rank)
        return [p.key for p in ranked[: self._config.regular_slots]]

    def _weighted_choice(self, pool: list[PeerStats], now: float) -> PeerStats:
        window = self._config.new_peer_seconds
        weights = [_NEW_PEER_WEIGHT if now - self._first_seen.get(p.key, now) < window else 1 for p in pool]
        return self._rng.choices(pool, weights=weights)[0]

    def _forget_gone(self, by_key: dict[K, PeerStats], now: float) -> None:
        for table in (self._first_seen, self._turn_start, self._last_turn):
            for key in [k for k in table if k not in by_key]:
                del table[key]
        for key in by_key:
            self._first_seen.setdefault(key, now)
