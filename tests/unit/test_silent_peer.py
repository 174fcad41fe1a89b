"""A catalog replica beside a peer that has just fallen silent, under load (issue 28), on the
pure core with the scripted driver: each rule below was a wait traced in a real run with
catalog1 hung (docs/measurements.md, "load-fault"), and each test fails on the code before it."""
from __future__ import annotations

from dataclasses import replace

import pytest

from nodes.core.books import Book
from nodes.core.catalog import CatalogReplica
from nodes.core.catalog.rules import Rule
from nodes.core.catalog.state import CHECK_TIMEOUT_S, HOP_HEDGE_S, HOP_TIMEOUT_S, LEASE_S, WRITE_PATIENCE_S
from nodes.core.clocks import outwait, outwait_told
from nodes.core.effects import Disk, Gather, Hedged, NoAnswer, Send, Sleep
from nodes.core.messages import (
    Applied,
    Busy,
    Check,
    Conflict,
    Found,
    Get,
    Granted,
    Newer,
    Ping,
    Pong,
    Read,
    Update,
    Write,
    Written,
)
from tests.support import Scripted, run
from tests.unit.test_catalog_core import BOOK, loaded, replica


def test_the_heartbeat_takes_every_answered_lease_before_it_fetches_buys() -> None:
    """catalog1 answered a ping and then hung: the buys fetched from it waited their time-out,
    one book after another, and catalog2's lease, taken after them, lapsed (a round of 0.82 s
    under load). Now every lease of the round is taken first, and a peer that leaves one fetch
    unanswered is asked for the rest next round."""
    core = replica(mode="bazar")
    other = replace(BOOK, id=3, seq=BOOK.seq)
    core.books[3] = other
    beat = Scripted(core, core.heartbeat(), now=5.0)
    seqs = {BOOK.id: BOOK.seq}
    ahead_on_buys = Pong(dict(seqs), (), {BOOK.id: 1, 3: 1}, lease_s=0.6, sums={BOOK.id: BOOK.checksum()})
    plain = Pong(dict(seqs), (), {}, lease_s=0.6, sums={BOOK.id: BOOK.checksum()})
    beat.answer([ahead_on_buys, plain], at=5.01)
    catalog1, catalog2 = core.peers
    assert catalog2.lease_until == 5.6 and catalog1.lease_until == 5.6, "both leases taken first"
    assert isinstance(beat.asks, Send) and beat.asks.to == "catalog1"  # the first fetch of buys
    beat.answer(NoAnswer(), at=5.41)  # catalog1 hung after its answer
    for _ in range(10):
        if isinstance(beat.asks, Sleep):
            break
        assert not isinstance(beat.asks, Send | Gather), f"asked again: {beat.asks!r}"
        beat.answer(None)
    assert isinstance(beat.asks, Sleep), "one unanswered fetch ends the round's fetching"
    assert core.lease_ok()


def test_a_reservation_held_for_a_peer_found_silent_turns_no_writer_away() -> None:
    """catalog1 reserved the book, then hung: every other write of the book met "busy" until
    the 3 s of the reservation ran out. Once the heartbeat finds catalog1 silent it holds
    nothing; its update, if it ever comes, meets the copy the other writer made."""
    core = replica(mode="bazar")
    assert run(core, core.handle(Check(2, 4, sender=1, token="one", since=0.0))) == Granted(4)
    assert run(core, core.handle(Check(2, 4, sender=2, token="two", since=1.0))) == Busy(1)
    core._note_unreachable(core.peers[0], NoAnswer())  # catalog1: its ping went unanswered
    assert run(core, core.handle(Check(2, 4, sender=2, token="two", since=1.0))) == Granted(4)
    newer = replace(BOOK, quantity=19, seq=5)
    assert isinstance(run(core, core.handle(Update(newer, 2, "two"))), Applied)
    late = replace(BOOK, quantity=18, seq=5)  # catalog1's, built on the same copy
    assert isinstance(run(core, core.handle(Update(late, 1, "one"))), Newer)
    assert core.books[2] == newer


def test_a_write_a_peer_took_lets_the_next_write_of_its_book_start_while_it_outwaits_a_lease() -> None:
    """A write that left a silent peer out outwaits the lease it holds (W2). It held the book
    meanwhile, and every buy of the book queued behind it for up to a second, then drained one
    round at a time. Taken by a peer and stored, it can no longer be withdrawn: the next write
    starts at once, and both are answered when the lease has run out."""
    core = replica(mode="bazar")
    core.peers[0].granted_until = 1.0
    first = Scripted(core, core.handle(Write(2, quantity=19)), now=0.1)
    first.answer([NoAnswer(refused=False), Granted(BOOK.seq)], at=0.2)  # catalog1 silent
    first.answer([Applied(BOOK.seq + 1)], at=0.21)  # catalog2 took it
    while not isinstance(first.asks, Gather | Sleep):
        first.answer(None)  # stored here
    assert not first.done, "still outwaiting catalog1's lease"
    second = Scripted(core, core.handle(Write(2, quantity=18)), now=0.22)
    checks = second.sends()
    assert [to for to, _check in checks] == ["catalog1", "catalog2"]
    assert all(isinstance(check, Check) and check.seq_n == BOOK.seq + 1 for _to, check in checks)
    # Each is answered once the lease has run out, not one after the other.
    second.answer([NoAnswer(refused=False), Granted(BOOK.seq + 1)], at=0.3)
    second.answer([Applied(BOOK.seq + 2)], at=0.31)
    for write in (first, second):
        for _ in range(40):
            if write.done:
                break
            if isinstance(write.asks, Gather):
                write.answer([NoAnswer()] * len(write.asks.sends), at=max(core.now, min(1.0, core.now + 0.2)))
            elif isinstance(write.asks, Sleep):
                write.answer(None, at=max(core.now, write.asks.until))
            else:
                write.answer(None)
        assert isinstance(write.result, Written), write.result
    assert core.books[2].seq == BOOK.seq + 2 and core.now <= 1.0 + 1e-9


def hopping_read(*, now: float = 0.0) -> tuple[CatalogReplica, Scripted]:
    """A lookup of book 2 at catalog0 (Bazar's rules), which holds nothing as valid: it hops,
    asking catalog1 first."""
    core = replica(mode="bazar")
    core.valid_ids.clear()
    return core, Scripted(core, core.handle(Read(2)), now=now)


def conflict_from_the_hedge(read: Scripted) -> Book:
    """The hedge goes out to catalog2, which answers "no current copy on this path" with a
    copy newer than ours (it skipped catalog1, still out); that newer copy."""
    read.hedge()
    newer = replace(BOOK, quantity=19, seq=BOOK.seq + 1)
    read.answer(Conflict(newer, "no current copy on this path", seq=newer.seq), to="catalog2")
    return newer


def test_a_reads_hops_wait_in_proportion_to_the_replicas_the_chain_may_still_visit() -> None:
    """A hop to a peer that had just gone silent waited the catalog's whole second. The first
    hop may go on through the third replica, so it waits two hops' time-outs; the last, one."""
    core, read = hopping_read()
    assert isinstance(read.asks, Hedged) and read.sends() == [("catalog1", Get(2, (), 0, BOOK.seq))]
    assert [send.timeout for send in read.asks.sends] == [2 * HOP_TIMEOUT_S, HOP_TIMEOUT_S]
    read.answer(NoAnswer(), at=2 * HOP_TIMEOUT_S)
    assert read.sends() == [("catalog2", Get(2, (1,), 0, BOOK.seq))]  # at once, catalog1 skipped
    read.answer(Found(BOOK))
    assert read.result == Found(BOOK)


def test_a_reads_hop_to_a_peer_silent_past_the_hedge_asks_the_next_one_too() -> None:
    """A peer that fell silent a moment before the heartbeat noticed held each read that hopped
    to it for the hop's whole time-out: 0.6 s under load, lookups of 0.85 s with catalog1 hung
    (traced 2026-12-07). Past ``HOP_HEDGE_S`` the next peer is asked too, naming the silent one
    as asked, as its time-out would have; the first answer decides."""
    core, read = hopping_read()
    assert isinstance(read.asks, Hedged) and read.asks.after == HOP_HEDGE_S
    core.now = HOP_HEDGE_S
    read.hedge()
    assert read.sends() == [("catalog1", Get(2, (), 0, BOOK.seq)), ("catalog2", Get(2, (1,), 0, BOOK.seq))]
    read.answer(Found(BOOK), to="catalog2")
    assert read.result == Found(BOOK)
    assert core.peers[0].up, "still out, not timed out: catalog1 is not noted down by the hedge"


def test_a_conflict_from_the_hedge_waits_for_the_slower_peer_which_may_still_vouch() -> None:
    """A conflict ends the sending but not the waiting: catalog2's quick "no current copy on
    this path" (it skipped catalog1) does not beat catalog1's vouched copy a moment later. Taken
    at once, it answered "try again" where the chain without the hedge answered the copy
    (review of the hedge, 2026-12-07)."""
    core, read = hopping_read()
    newer = conflict_from_the_hedge(read)
    assert not read.done and read.sends() == [("catalog1", Get(2, (), 0, BOOK.seq))]
    read.answer(Found(newer), to="catalog1")
    assert read.until_done() == Found(newer)  # its copy stored, then answered


def test_a_conflict_from_the_hedge_decides_once_the_slower_peer_times_out() -> None:
    """The chain's answer once catalog1 has timed out: catalog2's conflict, newer than our copy,
    is passed on ("try again"), and our copy is not vouched for."""
    core, read = hopping_read()
    conflict_from_the_hedge(read)
    read.answer(NoAnswer(), to="catalog1", at=2 * HOP_TIMEOUT_S)
    assert isinstance(read.result, Conflict) and 2 not in core.valid_ids


def test_a_refusal_is_weighed_against_the_time_its_own_send_went() -> None:
    """catalog1 refuses the hop (no process), restarts and pings us (granted a lease) before
    the hedged read resumes on catalog2's copy. Weighed against the resumption, the refusal
    would mark catalog1 "no process, no lease": writes would stop outwaiting the lease it now
    holds, the stale read of simulator seed 2064010732 (review of the hedge, 2026-12-07)."""
    core, read = hopping_read(now=1.0)
    read.answer(NoAnswer(refused=True), at=1.001)
    assert [to for to, _message in read.sends()] == ["catalog2"]  # at once
    run(core, core.handle(Ping(1, {BOOK.id: BOOK.seq})), now=1.05)  # back, and granted a lease
    read.answer(Found(BOOK), at=1.1, to="catalog2")
    assert read.result == Found(BOOK)
    assert not core.peers[0].refused and core.peers[0].up


def test_a_hops_hedge_waits_longer_the_further_its_peer_may_hop_and_not_without_w4() -> None:
    """``HOP_HEDGE_S`` for each replica the asked peer may have to hop past itself, so that a
    peer hedging past a silent replica of its own is not hedged past in turn (five replicas:
    15 % more hops under a hang, review of the hedge); without W4's rule, the documents' chain:
    no hedge before a send has failed."""
    three, read = hopping_read()
    assert isinstance(read.asks, Hedged) and read.asks.after == pytest.approx(HOP_HEDGE_S)
    five = loaded(catalogs=5)
    five.valid_ids.clear()
    read = Scripted(five, five.handle(Read(2)))
    assert isinstance(read.asks, Hedged) and read.asks.after == pytest.approx(3 * HOP_HEDGE_S)
    three.rules = three.rules - {Rule.SKIP_DOWN_PEERS}
    read = Scripted(three, three.handle(Read(2)))
    assert isinstance(read.asks, Hedged) and read.asks.after > max(send.timeout for send in read.asks.sends)


def test_a_check_waits_for_a_silent_peer_no_longer_than_the_lease_it_may_hold() -> None:
    """A silent peer is asked only while the lease we granted it may hold; waited for past
    that, it cost a buy in flight 0.5 s, and then its lease again."""
    core = replica(mode="bazar")
    core.peers[0].up = False
    core.peers[0].granted_until = 1.15
    core.peers[1].lease_until = 2.0  # catalog2's lease holds: what we know of catalog1 stands
    write = Scripted(core, core.handle(Write(2, quantity=19)), now=1.0)
    timeouts = {send.to: send.timeout for send in write.asks.sends} if isinstance(write.asks, Gather) else {}
    assert timeouts["catalog2"] == CHECK_TIMEOUT_S
    assert abs(timeouts["catalog1"] - 0.15) < 1e-9


def test_an_update_refused_ends_its_writers_reservation() -> None:
    """A writer whose update a peer refused sends nothing more under that reservation, and
    hands nothing back (its round handed the reservation over to the update). Kept, it turned
    every other writer of the book away for the reservation's 3 s; under full load that book
    took in every connection, and a healthy cluster stood still now and then."""
    core = replica(mode="bazar")
    assert run(core, core.handle(Check(2, 4, sender=1, token="one", since=0.0))) == Granted(4)
    newer = replace(BOOK, quantity=19, seq=5)
    core.books[2] = newer  # brought in meanwhile (catch-up, a read's hop)
    assert isinstance(run(core, core.handle(Update(replace(BOOK, quantity=18, seq=5), 1, "one"))), Newer)
    assert run(core, core.handle(Check(2, 5, sender=2, token="two", since=1.0))) == Granted(5)


def test_a_write_a_majority_answered_leaves_a_peer_still_silent_out_after_a_short_patience() -> None:
    """catalog1 hung after its last ping: a buy's check waited for it CHECK_TIMEOUT_S, and an
    update it had reserved for, the catalog's whole second, with every buy of the book queued
    behind. With majority writes the check and the update wait WRITE_PATIENCE_S for a peer
    still silent once a majority has answered; it is left out as a time-out leaves it (and
    released later, having maybe reserved), but not believed down: it may only be slow."""
    core = replica(mode="bazar")
    write = Scripted(core, core.handle(Write(2, quantity=19)), now=1.0)
    check = write.asks
    assert isinstance(check, Gather) and check.enough is not None and check.patience == WRITE_PATIENCE_S
    assert not check.enough([None, None]) and not check.enough([None, Busy(1)])
    assert check.enough([None, Granted(BOOK.seq)])  # with the writer, two of three
    write.answer([None, Granted(BOOK.seq)], at=1.0 + WRITE_PATIENCE_S)  # catalog1 still out
    catalog1, _catalog2 = core.peers
    assert catalog1.up, "a peer left out for being slow is not believed down"
    assert [entry[0] for entry in core.pending_releases] == [1], "its reservation, if any, is handed back"
    update = write.asks
    assert isinstance(update, Gather) and [send.to for send in update.sends] == ["catalog2"]
    assert update.enough is not None and update.patience == WRITE_PATIENCE_S
    assert update.sends[0].message.excluded == (1,)
    assert not update.enough([None]) and update.enough([Applied(BOOK.seq + 1)])
    write.answer([Applied(BOOK.seq + 1)], at=1.21)
    for _ in range(20):
        if write.done:
            break
        if isinstance(write.asks, Gather):  # the late offer to catalog1, while its lease runs
            write.answer([NoAnswer()] * len(write.asks.sends), at=core.now + 0.05)
        elif isinstance(write.asks, Sleep):
            write.answer(None, at=max(core.now, write.asks.until))
        else:
            write.answer(None)
    assert isinstance(write.result, Written) and write.result.book.seq == BOOK.seq + 1


def test_with_available_consistency_a_write_waits_for_every_peer() -> None:
    """Without majority writes a write must reach every reachable replica: no patience."""
    core = replica(mode="bazar")
    core.rules = core.rules - {Rule.MAJORITY}
    write = Scripted(core, core.handle(Write(2, quantity=19)), now=1.0)
    assert isinstance(write.asks, Gather) and write.asks.enough is None


def _finish(write: Scripted, core, late_offer) -> None:  # type: ignore[no-untyped-def]
    """Drive ``write`` to its answer: each late offer answered ``late_offer``, 0.05 s later."""
    for _ in range(60):
        if write.done:
            return
        if isinstance(write.asks, Gather):
            write.answer([late_offer] * len(write.asks.sends), at=core.now + 0.05)
        elif isinstance(write.asks, Sleep):
            write.answer(None, at=max(core.now, write.asks.until))
        else:
            write.answer(None)


def test_a_peer_whose_update_was_still_out_is_waited_out_as_one_left_out() -> None:
    """catalog2 granted the check, and its update's answer was still out when catalog1 had
    taken it: a read's hop may have made catalog2 vouch for the old copy again meanwhile (the
    writer's own answer to it, sent while the update was out). Answered 0.2 s later, the write
    let catalog2 answer the old stock after the buy (simulator seed 2048006196); it is now
    answered once catalog2 takes the update offered again, or every lease it could vouch on
    has run out: the one we granted it and the ones catalog1, which took the write, reports
    having granted it. With three replicas those are all (catalog2 needs one peer's lease,
    and the other two are us and catalog1). Waiting a whole lease more from then on took a
    buy in flight when catalog1 hung to a second and more (issue 28)."""
    core = replica(mode="bazar")
    catalog1, catalog2 = core.peers
    assert (catalog1.index, catalog2.index) == (1, 2)
    catalog2.granted_until = 1.5  # we answered its ping with a lease during the fan-out
    write = Scripted(core, core.handle(Write(2, quantity=19)), now=1.0)
    write.answer([Granted(BOOK.seq), Granted(BOOK.seq)], at=1.01)
    patience_over = 1.01 + WRITE_PATIENCE_S
    write.answer([Applied(BOOK.seq + 1, holds=((2, 0.5),)), None], at=patience_over)
    _finish(write, core, NoAnswer())
    assert isinstance(write.result, Written)
    reported = patience_over + outwait_told(0.5)
    assert core.now >= reported > 1.5, "answered before catalog1's lease to catalog2 could run out"
    assert core.now < reported + 0.1, "a whole lease more waited out for nothing"
    assert core.now < patience_over + outwait(LEASE_S)

    core = replica(mode="bazar")
    write = Scripted(core, core.handle(Write(2, quantity=19)), now=1.0)
    write.answer([Granted(BOOK.seq), Granted(BOOK.seq)], at=1.01)
    write.answer([Applied(BOOK.seq + 1), None], at=1.01 + WRITE_PATIENCE_S)
    _finish(write, core, Applied(BOOK.seq + 1))
    assert isinstance(write.result, Written)
    assert core.now < 1.01 + WRITE_PATIENCE_S + 0.2, "catalog2 took the late offer: nothing left to wait for"


def test_a_lease_a_peer_reports_is_counted_from_its_answer_not_from_the_end_of_the_patience() -> None:
    """A buy in flight when catalog2 hung: catalog1 took the update at once and reported the
    lease it had granted catalog2; the write waited its patience for catalog2 and then counted
    that lease from there, 0.2 s late (a buy answered after 1.0 s in a recorded run). The
    driver says when each answer came; the lease is counted from then."""
    core = replica(mode="bazar")
    write = Scripted(core, core.handle(Write(2, quantity=19)), now=1.0)
    write.answer([Granted(BOOK.seq), Granted(BOOK.seq)], at=1.01)
    fan_out = write.asks
    assert isinstance(fan_out, Gather)
    fan_out.arrived[:] = [1.015, None]  # as a driver fills it in: catalog1 answered at once
    patience_over = 1.015 + WRITE_PATIENCE_S
    write.answer([Applied(BOOK.seq + 1, holds=((2, 0.5),)), None], at=patience_over)
    _finish(write, core, NoAnswer())
    assert isinstance(write.result, Written)
    assert core.now >= 1.015 + outwait_told(0.5), "answered before catalog1's lease to catalog2 could run out"
    assert core.now < patience_over + outwait_told(0.5) - 0.1, "the patience counted twice"


def test_a_buy_carried_out_elsewhere_waits_to_settle_without_holding_its_book() -> None:
    """A buy's first attempt reached catalog2 after its hedge had been carried out through
    catalog0: known here, it is answered done once it has settled, up to a lease later. It held
    the book meanwhile, every later buy of the book queued behind it, was hedged in turn and
    carried out elsewhere, and waited here the same way: one book's buys took ~1 s each for
    seconds on end under a cut-off. The next buy of the book now starts its round at once."""
    core = replica(mode="bazar")
    core._remember_buy("hedged", 2, BOOK.seq)
    core.buy_settles["hedged"] = 1.6
    first = Scripted(core, core.handle(Write(2, quantity=BOOK.quantity - 1, buy_id="hedged", take=1)), now=1.0)
    assert isinstance(first.asks, Sleep) and first.asks.until >= 1.6
    second = Scripted(core, core.handle(Write(2, quantity=BOOK.quantity - 1, buy_id="next", take=1)), now=1.01)
    assert isinstance(second.asks, Gather), f"the next buy waited for the book: {second.asks!r}"
    assert all(isinstance(send.message, Check) for send in second.asks.sends)
    first.answer(None, at=1.6)
    assert isinstance(first.result, Written) and first.result.duplicate


def test_a_writers_reservation_at_home_is_as_old_as_the_checks_it_sends() -> None:
    """A round's checks carry the age of its oldest buy, riders included; its reservation here
    kept the age of the buy that led it. Two writers of one book (beside a hung replica, each
    needing the other's grant) each found the other's check older than the writer it held the
    book for, each waited 0.3 s for the other and refused: 409s for 3 s, then 503 (issue 28).
    The reservation here now takes the age the checks carry, so exactly one of two such
    checks waits."""
    core = replica(mode="bazar")
    lead = Scripted(core, core.handle(Write(2, quantity=19, buy_id="lead", take=1, since=5.0)), now=5.0)
    assert isinstance(lead.asks, Gather)  # its checks are out; the book is held
    second = Scripted(core, core.handle(Write(2, quantity=19, buy_id="second", take=1, since=4.0)), now=5.01)
    rider = Scripted(core, core.handle(Write(2, quantity=19, buy_id="old", take=1, since=1.0)), now=5.02)
    lead.answer([Granted(BOOK.seq), Granted(BOOK.seq)], at=5.03)
    for _ in range(20):  # the lead's round ends; the next round starts, "old" riding on it
        if not lead.done:
            lead.answer([Applied(BOOK.seq + 1), Applied(BOOK.seq + 1)] if isinstance(lead.asks, Gather) else None)
    second.answer(None)  # woken: it leads the next round, and "old", queued behind, rides on it
    assert isinstance(second.asks, Gather), second.asks
    checks = [send.message for send in second.asks.sends]
    assert checks and all(isinstance(check, Check) and check.since == 1.0 for check in checks), checks
    assert core.reservations[2].priority == (1.0, 0), "the reservation here is as old as the checks"
    assert not rider.done  # carried by the round under way


def test_a_reset_while_a_hops_copy_is_stored_answers_nothing_of_the_old_data() -> None:
    """Review of the hedge's mends: a read holds no book lock, so a reset of the data can run
    to its end while the copy a hop brought is being stored; the read then answered that copy,
    of the data before the reset. It answers nothing now (the caller asks again)."""
    core, read = hopping_read()
    newer = replace(BOOK, quantity=19, seq=BOOK.seq + 1)
    read.answer(Found(newer), to="catalog1")
    assert isinstance(read.asks, Disk)  # the copy being stored
    reset = Scripted(core, core.reset(1))
    for _ in range(20):
        if reset.done:
            break
        fresh = {BOOK.id: replace(BOOK, seq=0)}
        reset.answer(fresh if isinstance(reset.asks, Disk) and reset.asks.method == "reset" else None)
    assert reset.done
    result = read.until_done()
    assert core.generation == 1 and result != Found(newer), result
