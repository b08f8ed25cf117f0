"""The iterative lookup state machine, driven by hand."""

from __future__ import annotations

from p2pshare.core.dht.ids import int_to_id
from p2pshare.core.dht.lookup import CandidateState, Lookup, LookupKind

TARGET = bytes(20)


def node(i: int) -> tuple[bytes, tuple[str, int]]:
    return (int_to_id(i << 100), (f"10.0.0.{i}", 6881))


def make(k: int = 3, alpha: int = 2) -> Lookup:
    return Lookup(1, LookupKind.FIND_NODE, TARGET, k=k, alpha=alpha, max_candidates=16, max_rounds=10)


def test_queries_alpha_nearest_first() -> None:
    """The first step queries the alpha candidates nearest the target."""
    lk = make()
    lk.add_candidates([node(i) for i in (9, 3, 7, 5)], 0)
    assert [c.addr for c in lk.next_queries()] == [node(3)[1], node(5)[1]]
    assert lk.next_queries() == []  # alpha in flight


def test_converges_when_k_nearest_answered() -> None:
    """Once the k nearest live candidates answered and nothing nearer is pending, it converges."""
    lk = make(k=2, alpha=2)
    lk.add_candidates([node(8), node(9)], 0)
    for c in lk.next_queries():
        nodes = [node(2), node(3)] if c.addr == node(8)[1] else []
        lk.on_response(c.addr, c.node_id or b"", nodes, None)
    sent = lk.next_queries()
    assert [c.addr for c in sent] == [node(2)[1], node(3)[1]]
    for c in sent:
        lk.on_response(c.addr, c.node_id or b"", [], b"tok")
    assert lk.next_queries() == [] and lk.converged
    assert [c.addr for c in lk.closest_responded(2)] == [node(2)[1], node(3)[1]]
    assert lk.closest_responded(1)[0].token == b"tok"


def test_slow_query_opens_a_slot_and_no_longer_blocks() -> None:
    """A query past its short timeout frees its slot; a late answer is still used."""
    lk = make(k=1, alpha=1)
    lk.add_candidates([node(2), node(4)], 0)
    (first,) = lk.next_queries()
    assert lk.next_queries() == []
    lk.on_slow(first.addr)
    (second,) = lk.next_queries()
    assert second.addr == node(4)[1]
    lk.on_response(second.addr, node(4)[0], [], None)
    assert lk.next_queries() == [] and lk.converged  # the slow one does not hold it up
    lk.on_response(first.addr, node(2)[0], [], None)  # late answer after convergence is recorded
    assert lk.get(first.addr) is not None and lk.get(first.addr).state is CandidateState.RESPONDED  # type: ignore[union-attr]


def test_failures_are_skipped() -> None:
    """Failed candidates neither count towards k nor block convergence."""
    lk = make(k=2, alpha=3)
    lk.add_candidates([node(1), node(2), node(3)], 0)
    a, b, c = lk.next_queries()
    lk.on_failure(a.addr)
    lk.on_response(b.addr, node(2)[0], [], None)
    lk.on_response(c.addr, node(3)[0], [], None)
    assert lk.next_queries() == [] and lk.converged and lk.failures == 1


def test_runs_out_of_candidates() -> None:
    """With nothing left to ask and nothing in flight, the lookup ends even short of k answers."""
    lk = make(k=8)
    lk.add_candidates([node(1)], 0)
    (c,) = lk.next_queries()
    lk.on_failure(c.addr)
    assert lk.next_queries() == [] and lk.converged


def test_unknown_id_bootstrap_candidate_learns_its_id() -> None:
    """A bootstrap address without an id is queried last and re-sorted once it answers."""
    lk = make(k=2, alpha=1)
    lk.add_candidates([(None, ("10.9.9.9", 1))], 0)
    (c,) = lk.next_queries()
    lk.on_response(c.addr, int_to_id(1), [node(5)], None)
    assert c.node_id == int_to_id(1) and c.dist == 1


def test_final_phase_asks_all_k_nearest_at_once() -> None:
    """An answer that brings nothing nearer switches to asking the remaining k nearest in parallel."""
    lk = make(k=4, alpha=1)
    lk.add_candidates([node(i) for i in (1, 2, 3, 4, 5)], 0)
    (c,) = lk.next_queries()
    lk.on_response(c.addr, node(1)[0], [node(6)], None)  # nothing nearer than node 1
    assert lk.final_phase
    sent = {c.addr for c in lk.next_queries()}
    assert {node(i)[1] for i in (2, 3, 4)} <= sent and len(sent) <= lk.k


def test_candidate_list_is_capped() -> None:
    """No more than max_candidates are kept; the farthest new ones are dropped."""
    lk = Lookup(1, LookupKind.GET_PEERS, TARGET, k=2, alpha=1, max_candidates=4, max_rounds=10)
    lk.add_candidates([node(i) for i in range(10, 20)], 0)
    lk.add_candidates([node(1)], 0)
    addrs = [c.addr for c in lk._sorted]
    assert len(addrs) == 4 and addrs[0] == node(1)[1]
