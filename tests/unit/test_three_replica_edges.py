"""Two defects of three-replica clusters the simulator found once order replicas wrote books
they last saw in stock at once (2026-12-07): new schedules, old code. Each test fails on the
code before its fix."""
from __future__ import annotations

from dataclasses import replace

from nodes.core.catalog.state import HEARTBEAT_S
from nodes.core.effects import Gather, NoAnswer
from nodes.core.messages import Applied, Busy, Newer, Ping, Update, Write
from tests.support import Scripted
from tests.unit.test_catalog_core import BOOK, replica


def test_a_refusal_of_a_check_sent_while_a_peer_was_down_does_not_undo_its_new_lease() -> None:
    """Simulator seed 2064010732 (a stale read): catalog1's check to catalog2, sent while
    catalog2 restarted, came back "refused" after catalog2 had pinged catalog1 and taken its
    lease. Counted as "no process, no lease", catalog1 left that lease out of the next update's
    answer, the writer acknowledged a write without outwaiting it, and catalog2 went on
    vouching for the copy before it."""
    core = replica(mode="bazar")
    peer2 = core.peers[1]
    assert peer2.index == 2 and peer2.up
    write = Scripted(core, core.handle(Write(BOOK.id, quantity=BOOK.quantity - 1, buy_id="b-1", take=1)), now=5.0)
    assert isinstance(write.asks, Gather), write.asks  # the checks, sent at 5.0
    # catalog2 restarts meanwhile, pings us and is granted a lease.
    core.now = 5.1
    pong = core.on_ping(Ping(2, {BOOK.id: BOOK.seq}, lease=True))
    assert pong.lease_s is not None, "granted"
    write.answer([Applied(BOOK.seq), NoAnswer(refused=True)], at=5.2)  # the check it refused while down
    assert not peer2.refused and peer2.up, "the refusal is older than the lease it holds"
    granted = peer2.granted_until
    assert granted > 5.2 + HEARTBEAT_S


def test_a_replica_behind_takes_one_of_two_rival_unconfirmed_writes_of_a_seq() -> None:
    """Simulator seed 2064001167: catalog1 and catalog2 each made a write of seq 5 granted by
    catalog0 alone, and their updates to it were lost. Each held its own unconfirmed, each
    answered the other's offer "busy", and catalog0 refused both while the other showed that
    seq: book 6 never converged. The first offer it takes makes a majority; the other writer
    is answered that copy."""
    core = replica(mode="bazar")  # catalog0, at BOOK.seq
    seq = BOOK.seq + 1
    for peer in core.peers:  # each shows the seq with its row unsaid: its own unconfirmed write
        peer.seqs[BOOK.id] = seq
        peer.view.seqs[BOOK.id] = seq
        peer.view.sums[BOOK.id] = None
    first = Update(replace(BOOK, quantity=BOOK.quantity - 1, seq=seq), 1, "t1", ("b-1",), late=True)
    rival = Update(replace(BOOK, quantity=BOOK.quantity - 1, seq=seq), 2, "t2", ("b-2",), late=True)
    taken = Scripted(core, core.handle(first), now=9.0)
    taken.until_done()
    assert isinstance(taken.result, Applied), taken.result
    refused = Scripted(core, core.handle(rival), now=9.1)
    refused.until_done()
    assert isinstance(refused.result, Newer) and refused.result.book.seq == seq, refused.result
    assert not isinstance(refused.result, Busy)
