"""The catalog replica's rules, one figure at a time, on the pure core alone: a scripted driver
(tests/support.py) hands the test every message the replica sends and every write it makes,
and the test answers as the peers of the figure would (docs/protocol.md, docs/weak-points.md)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from nodes.core.books import Book
from nodes.core.catalog import CatalogReplica
from nodes.core.catalog.state import FETCH_DEFER_ROUNDS, FRONTEND_LEASE_S, HEARTBEAT_S, PING_TIMEOUT_S
from nodes.core.clocks import NEVER
from nodes.core.effects import Disk, DiskFailed, Gather, NoAnswer, Sleep
from nodes.core.messages import (
    Applied,
    Busy,
    BuysOf,
    Check,
    Conflict,
    Degraded,
    Done,
    FetchBuys,
    Found,
    Get,
    Granted,
    Healthy,
    Invalidate,
    KnownBuy,
    Newer,
    NotWritten,
    Ping,
    Pong,
    Read,
    Release,
    Unconfirmed,
    Update,
    Write,
    Written,
)
from tests.support import Scripted, compared, confirmed_by_peers, run

BOOK = Book(2, "RPCs for Noobs", "distributed systems", 50, 20, seq=4)


def replica(*, mode: str = "documented", buys: dict[str, tuple[int, int]] | None = None) -> CatalogReplica:
    """Replica 0 of three, started from a disk holding BOOK (and ``buys``), its row confirmed by
    its peers; it asks catalog1 first."""
    return confirmed_by_peers(loaded(mode=mode, buys=buys))


def loaded(*, mode: str = "bazar", buys: dict[str, tuple[int, int]] | None = None, row: Book = BOOK,
           damaged: dict[int, str] | None = None, catalogs: int = 3) -> CatalogReplica:
    """Replica 0 of ``catalogs`` just started from a disk holding ``row`` (BOOK), with ``buys``,
    and the rows ``damaged`` names found so: no peer has answered yet."""
    core = CatalogReplica(0, catalogs, has_frontend=False, mode=mode, peer_order=list(range(1, catalogs)))
    start = Scripted(core, core.start())
    for asked, answer in (("load_generation", 0), ("load_books", {row.id: row}), ("load_buys", buys or {}),
                          ("load_damaged", damaged or {}), ("load_tentative", [])):
        assert isinstance(start.asks, Disk) and start.asks.method == asked
        start.answer(answer)
    assert start.done
    return core


#: What a row failing its checksum at start is said to have (``loaded(damaged=...)``).
FAILS_CHECKSUM = {BOOK.id: "it fails its checksum"}
#: A copy older than BOOK: what a peer behind holds.
OLDER = replace(BOOK, quantity=25, seq=BOOK.seq - 1)


def test_s2_a_read_hops_to_a_peer_that_vouches_and_the_copy_becomes_valid_here() -> None:
    core = replica()
    read = Scripted(core, core.handle(Read(2)))
    assert read.sends() == [("catalog1", Get(2, (), 0, 4))]  # req: nobody asked yet; seq_n: our seq
    newer = replace(BOOK, quantity=19, seq=5)
    read.answer(Found(newer))
    assert isinstance(read.asks, Disk) and read.asks.method == "write"  # adopted durably first
    read.answer(None)
    assert read.result == Found(newer)
    assert core.books[2] == newer and 2 in core.valid_ids
    assert ("valid", {"book": 2, "valid": True, "seq": 5}) in read.events


def test_s3_a_conflict_from_further_down_leaves_our_newer_copy_to_answer() -> None:
    core = replica()
    assert run(core, core.handle(Read(2)), {"Get": Conflict(replace(BOOK, seq=3), seq=3)}) == Found(BOOK)
    assert 2 in core.valid_ids


def test_s5_a_write_that_meets_a_newer_peer_releases_the_others_then_takes_the_newer_copy() -> None:
    core = replica(mode="bazar")
    write = Scripted(core, core.handle(Write(2, quantity=10)))
    (to1, check1), (to2, check2) = write.sends()
    assert (to1, to2) == ("catalog1", "catalog2") and isinstance(check1, Check) and check1.seq_n == 4
    newest = replace(BOOK, quantity=7, seq=9)
    write.answer([Newer(newest), Granted(4)])
    # The peer that granted its reservation is released before anything else happens (W1).
    assert write.sends() == [("catalog2", Release(2, check1.token))]
    write.answer([Done()])
    assert isinstance(write.asks, Disk) and write.asks.args[0] == newest
    write.answer(None)
    assert write.result == Conflict(newest, "outdated")
    assert core.books[2] == newest


def test_w8_a_write_without_a_majority_of_replicas_changes_nothing() -> None:
    core = replica(mode="bazar")
    answer = run(core, core.handle(Write(2, quantity=10)), {"Check": NoAnswer(refused=False)})
    assert isinstance(answer, NotWritten) and answer.reason.startswith("only 1 of 3")
    assert core.books[2] == BOOK and not core.reservations


def test_w1_a_reserved_book_turns_a_younger_writer_away_at_once() -> None:
    core = replica(mode="bazar")
    first = run(core, core.handle(Check(2, 4, sender=1, token="one", since=0.0)))
    second = run(core, core.handle(Check(2, 4, sender=2, token="two", since=1.0)))
    assert first == Granted(4) and second == Busy(1)
    assert run(core, core.handle(Release(2, "one"))) == Done()
    assert run(core, core.handle(Check(2, 4, sender=2, token="two", since=1.0))) == Granted(4)


def test_w7_a_buy_already_carried_out_is_answered_its_first_outcome_without_a_hop() -> None:
    core = replica(buys={"buy-7": (2, 4)})
    read = Scripted(core, core.handle(Read(2, buy_id="buy-7")))
    assert read.done, f"it asked {read.asks!r}"
    assert read.result == KnownBuy(BOOK, 0.0, "buy-7")


def test_a_ping_is_answered_while_a_restock_with_no_buys_is_unconfirmed() -> None:
    """A restock whose updates got no answer stays tentative (a peer may hold it); the pings that
    settle it must still be answered, although no buy of that book is remembered."""
    core = replica(mode="bazar")
    write = Scripted(core, core.handle(Write(2, quantity=30)))
    token = write.sends()[0][1].token
    write.answer([Granted(4), Granted(4)])
    assert [type(message).__name__ for _to, message in write.sends()] == ["Update", "Update"]
    write.answer([NoAnswer(), NoAnswer()])  # lost, not refused: either peer may hold it
    write.until_done()
    assert 2 in core.tentative and token
    pong = run(core, core.handle(Ping(1, {b.id: b.seq for b in core.books.values()})))
    assert pong.buy_counts.get(2, 0) == 0


def unconfirmed(core: CatalogReplica, request: Write) -> Book:
    """Carry ``request`` out at ``core`` with both peers granting it and both updates lost: the
    write stays tentative (either peer may hold it). Our copy, as it is now."""
    write = Scripted(core, core.handle(request))
    write.answer([Granted(BOOK.seq), Granted(BOOK.seq)])
    assert [type(message).__name__ for _to, message in write.sends()] == ["Update", "Update"]
    write.answer([NoAnswer(), NoAnswer()])
    assert isinstance(write.until_done(), Unconfirmed) and request.book in core.tentative
    return core.books[request.book]


def test_w2_no_write_is_built_on_an_unconfirmed_one() -> None:
    """Seeds 2026204393 and 2026213267: the peers had made another write of the unconfirmed one's
    seq (a retry of its buy among others); a check compares seqs only, so they granted the next
    write, built on our copy, and took it over theirs: their buys stayed, their copies came back.
    Now the writer answers busy, checking no one, until its unconfirmed write has settled."""
    core = replica(mode="bazar")
    ours = unconfirmed(core, Write(2, quantity=19, base_seq=4, buy_id="buy-a", since=0.0, take=1))
    write = Scripted(core, core.handle(Write(2, quantity=18, base_seq=5, buy_id="buy-b", since=0.5, take=1)))
    assert write.done, f"it asked {write.asks!r}"
    assert write.result == Conflict(ours, "busy")
    assert core.books[2] == ours and "buy-b" not in core.buys


def test_w2_a_read_hop_hands_on_the_peer_copy_of_the_seq_of_an_unconfirmed_write() -> None:
    """Seeds 2026204393 and 2026213267: a peer vouched for its own write of our unconfirmed write's
    seq, and the hop answered ours instead (a stale stock: the peer's write took more copies)."""
    core = replica(mode="bazar")
    ours = unconfirmed(core, Write(2, quantity=19, base_seq=4, buy_id="buy-a", since=0.0, take=1))
    theirs = replace(BOOK, quantity=17, seq=ours.seq)  # three buys, "buy-a" retried among them
    for peer in core.peers:
        peer.up = True  # heard from since its updates were lost (else it is out of touch: no hop)
    read = Scripted(core, core.handle(Read(2)))
    assert read.sends() == [("catalog1", Get(2, (), 0, ours.seq))]
    read.answer(Found(theirs))
    assert read.result == Found(theirs)
    assert core.books[2] == ours and 2 in core.tentative  # it settles with the heartbeat, as before


def test_a_peer_that_knows_a_buy_id_for_another_book_makes_the_write_refuse_it() -> None:
    """Found in review: this replica has not heard of buy X, a peer holds X for book 3, and a
    write of book 2 with X came here. The peer's check answered X as done, and the write was
    answered 'bought' with no copy taken. Now the peer says the id was used for another book
    and the write is refused, changing nothing."""
    from nodes.core.messages import ReusedBuyId

    core = replica(mode="bazar")
    peer = replica(mode="bazar", buys={"X": (3, 1)})  # X bought book 3 there
    answer = run(peer, peer.handle(Check(2, 4, sender=0, token="t", buy_id="X", since=0.0)))
    assert answer == ReusedBuyId("X", 3)
    write = Scripted(core, core.handle(Write(2, quantity=19, buy_id="X", take=1)))
    write.answer([answer, Granted(4)])
    assert [type(m).__name__ for _to, m in write.sends()] == ["Release"]  # the granted peer is released
    write.answer([Done()])
    assert write.result == ReusedBuyId("X", 3)
    assert core.books[2] == BOOK and "X" not in core.buys


# ---- storage that checks itself, across replicas (catch_up._compare_rows) ------------------------
CHANGED = replace(BOOK, quantity=999)  # a row changed on disk, seq kept, checksum and all


def pong(seq: int = BOOK.seq, sums: dict[int, str | None] | None = None, unverified: tuple[int, ...] = ()) -> Pong:
    """A peer's whole answer to our ping: ``sums`` None means it holds BOOK's very row."""
    return Pong({BOOK.id: seq}, (), {}, sums={BOOK.id: BOOK.checksum()} if sums is None else sums,
                unverified=unverified)


def test_a_row_loaded_at_start_is_neither_written_on_nor_handed_on_until_a_peer_confirms_it() -> None:
    core = loaded()
    assert run(core, core.handle(Write(2, quantity=10))) == Conflict(BOOK, "busy")
    assert run(core, core.handle(Check(2, 4, sender=1, token="t", since=0.0))) == Busy(0)
    behind = run(core, core.handle(Ping(1, {2: 3})))
    assert behind.newer == () and behind.unverified == (2,)
    compared(core, [pong()])  # one peer holds the very same row (the other did not answer)
    assert not core.unverified and behind.unverified == (2,)
    assert run(core, core.handle(Check(2, 4, sender=1, token="t", since=0.0))) == Granted(4)


def test_a_row_changed_checksum_and_all_gives_way_to_the_row_its_peers_confirm() -> None:
    core = loaded()
    core.books[2] = CHANGED  # as if loaded so
    compared(core, [pong(sums={2: BOOK.checksum()}), pong(sums={2: BOOK.checksum()})])
    assert core.books[2].seq == -1 and 2 not in core.unverified
    assert core.damaged[2] == "differs from the copy 2 peers hold at seq 4"
    assert not any(book.id == 2 for book, _buys in run(core, core.handle(Ping(1, {2: 3}))).newer)
    # Nor is a write built on it: busy, checking no one (a check would name seq -1, and the
    # peers' route refuses it: 400, taken for no answer, and the buy refused for want of a majority).
    write = Scripted(core, core.handle(Write(2, quantity=3, base_seq=4, buy_id="buy-d", take=1)))
    assert write.done and isinstance(write.result, Conflict) and write.result.reason == "busy"


def test_a_damaged_row_is_repaired_by_no_copy_older_than_the_seq_it_held() -> None:
    """Simulator seed 2066009210: our row of seq 4, taken with one peer, was changed on disk
    checksum and all; that peer's word showed it damaged, and then that peer went down. The
    third replica's copy of seq 3 misses the write the two of us took: adopted, we would write
    seq 4 anew, and the buy we remember would stay with no copy taken. Nor is the third granted
    a check meanwhile: its write would take seq 4 again."""
    older = replace(BOOK, quantity=25, seq=3)
    core = loaded(buys={"b-1": (BOOK.id, BOOK.seq)})
    core.books[2] = CHANGED
    compared(core, [pong(sums={2: BOOK.checksum()})])  # catalog1 holds the seq-4 row confirmed
    assert core.books[2].seq == -1 and 2 in core.damaged
    assert run(core, core.handle(Check(2, 3, sender=2, token="t", since=0.0))) == Busy(0)
    assert run(core, core._adopt(older)) is False
    assert core.books[2].seq == -1 and 2 in core.damaged
    assert run(core, core._adopt(BOOK)) is True  # catalog1 back: its copy repairs ours
    assert core.books[2] == BOOK and 2 not in core.damaged and not core.repair_floor


def test_a_row_failing_its_checksum_waits_for_a_copy_carrying_the_buys_it_remembers() -> None:
    """A row failing its checksum may name any seq (here 90); the buys we remember of it do not
    lie: a copy older than they are does not repair it, one that carries them does."""
    core = loaded(row=replace(BOOK, seq=90), buys={"b-1": (BOOK.id, BOOK.seq)}, damaged=FAILS_CHECKSUM)
    assert core.books[2].seq == -1
    says(core, 1, OLDER.seq)
    says(core, 2, OLDER.seq)  # both peers are behind the buys: the buys bind
    assert run(core, core._adopt(OLDER)) is False and 2 in core.damaged
    assert run(core, core._adopt(BOOK)) is True
    assert core.books[2] == BOOK and 2 not in core.damaged and not core.floor_unknown


def says(core: CatalogReplica, index: int, seq: int) -> None:
    """Peer ``index`` answers our ping: it holds BOOK's book at ``seq``."""
    peer = next(p for p in core.peers if p.index == index)
    core._take_view(peer, Pong({BOOK.id: seq}, (), {}))


def test_a_row_failing_its_checksum_is_repaired_only_by_the_newest_copy_enough_peers_hold() -> None:
    """A review (2026-12-07): our row of seq 4, a restock taken with catalog1, fails its
    checksum at start, and no buy names its seq; catalog1 is down. catalog2's seq 3 repaired
    it, and catalog2 could then write seq 4 with us: two confirmed rows of one seq. With three
    replicas both peers must say what they hold first, and the newest they hold repairs it."""
    core = loaded(damaged=FAILS_CHECKSUM)
    assert core.books[2].seq == -1
    assert run(core, core._adopt(OLDER)) is False  # nobody has said anything yet
    says(core, 2, OLDER.seq)
    assert run(core, core._adopt(OLDER)) is False  # catalog1, not heard yet, may hold a newer seq
    says(core, 1, BOOK.seq)
    assert run(core, core._adopt(OLDER)) is False and 2 in core.damaged
    assert run(core, core._adopt(BOOK)) is True and core.books[2] == BOOK and 2 not in core.damaged


def test_a_late_offer_that_cannot_repair_a_damaged_row_yet_is_answered_busy() -> None:
    """Not "could not store the write: None": nothing is wrong with our disk, the copy only
    cannot repair the row yet (catalog1, which may hold a newer seq, has not said)."""
    core = loaded(damaged=FAILS_CHECKSUM)
    says(core, 2, OLDER.seq)
    offer = Update(OLDER, 2, "2.x.1", late=True)
    assert run(core, core.handle(offer)) == Busy(None) and 2 in core.damaged


def test_two_damaged_rows_of_three_are_repaired_from_the_third_replica() -> None:
    """Review of the rule above: catalog1's row is damaged too (it says -1). Waiting for its
    word, each damaged replica waited for the other, for good, and no one could write the book.
    A write held only in damaged rows is lost with them: the newest copy left repairs ours."""
    core = loaded(damaged=FAILS_CHECKSUM)
    says(core, 1, -1)
    says(core, 2, OLDER.seq)
    assert run(core, core._adopt(OLDER)) is True and core.books[2] == OLDER and 2 not in core.damaged


@pytest.mark.xfail(strict=True, reason="known, not mended: docs/weak-points.md, storage that checks itself")
def test_a_write_whose_every_holder_was_damaged_gives_way_to_the_newest_copy_left() -> None:
    """Simulator seed 2077018247 (2026-12-07): seq 3 of book 6 taken by catalog0 and catalog1;
    catalog1's row changed checksum and all, found differing from catalog0's row of seq 3 (its
    floor known: 3), then catalog0's failed its checksum. catalog2's seq 2 was the newest copy
    left, and both damaged replicas waited for a copy of seq 3 for good: the book served by
    no one, the replicas never converging. The rule says a write held only in damaged rows is
    lost with them and the newest copy left repairs the book; a floor known from a peer's row
    is kept instead."""
    core = loaded()
    core._take_as_damaged(2, f"differs from the copy 1 peers hold at seq {BOOK.seq}")
    says(core, 1, -1)
    says(core, 2, OLDER.seq)
    assert run(core, core._adopt(OLDER)) is True and core.books[2] == OLDER


def test_with_four_replicas_a_damaged_peer_does_not_stand_for_the_one_still_silent() -> None:
    """Review: seq 4 taken by us, catalog1 and catalog3; we and catalog1 restart with that row
    failing its checksum, catalog3 is down. catalog1's -1 filled one of the two words we wait
    for, catalog2's seq 3 repaired us, and a majority could then write seq 4 anew beside
    catalog3's intact copy. With a -1 among them, every peer's word is waited for."""
    core = loaded(damaged=FAILS_CHECKSUM, catalogs=4)
    says(core, 1, -1)
    says(core, 2, OLDER.seq)
    assert run(core, core._adopt(OLDER)) is False  # catalog3 may hold seq 4 intact
    says(core, 3, BOOK.seq)
    assert run(core, core._adopt(OLDER)) is False
    assert run(core, core._adopt(BOOK)) is True and 2 not in core.damaged


def test_a_row_failing_its_checksum_takes_the_older_copy_both_peers_hold() -> None:
    """Both peers hold seq 3: a seq 4 of ours was a write no majority took, and seq 3 repairs it."""
    core = loaded(damaged=FAILS_CHECKSUM)
    says(core, 1, OLDER.seq)
    says(core, 2, OLDER.seq)
    assert run(core, core._adopt(OLDER)) is True and core.books[2] == OLDER and 2 not in core.damaged


def test_unconfirmed_rows_follow_a_majority_of_the_replicas() -> None:
    """After a restart of every replica no row is confirmed: two of three equal rows decide."""
    core = loaded()
    core.books[2] = CHANGED
    compared(core, [pong(sums={2: BOOK.checksum()}, unverified=(2,))])  # one against one
    assert 2 in core.disputed and core.books[2] == CHANGED
    compared(core, [pong(sums={2: BOOK.checksum()}, unverified=(2,))] * 2)
    assert core.books[2].seq == -1 and 2 in core.damaged


def test_two_confirmed_rows_of_one_seq_with_no_majority_are_vouched_for_by_no_one() -> None:
    core = replica(mode="bazar")
    core._mark_valid(2)
    compared(core, [pong(sums={2: CHANGED.checksum()})])  # the other peer did not answer
    assert 2 in core.disputed and 2 not in core.valid_ids and core.books[2] == BOOK
    assert run(core, core.handle(Write(2, quantity=10))) == Conflict(BOOK, "busy")
    compared(core, [pong(), pong(sums={2: CHANGED.checksum()})])  # now two of three hold ours
    assert 2 not in core.disputed and core.books[2] == BOOK


def test_a_row_ahead_of_every_peer_is_confirmed_only_once_every_peer_has_answered() -> None:
    """A write is stored by a majority: the peer that did not answer may hold the same seq."""
    core = loaded()
    compared(core, [pong(seq=3, sums={2: "x"})])
    assert 2 in core.unverified
    compared(core, [pong(seq=3, sums={2: "x"}), pong(seq=3, sums={2: "x"})])
    assert 2 not in core.unverified


def test_a_peer_holding_our_seq_unsaid_keeps_a_row_from_being_confirmed() -> None:
    """Simulator seed 2028300427: a peer that holds our seq as an unconfirmed write of its own
    sends no checksum of it; with the other peer behind, nobody has confirmed our row."""
    core = loaded()
    compared(core, [pong(sums={}), pong(seq=3, sums={2: "x"})])
    assert 2 in core.unverified


def test_a_dispute_between_two_restarted_replicas_is_decided_by_the_row_the_third_was_handed() -> None:
    """Simulator seeds 2028314085 and 2028712420: our row and one peer's, both loaded at start,
    differ at one seq (one changed checksum and all); the third replica is behind, but a peer
    once handed it a confirmed row of that seq (``witnessed``): that is the vote."""
    witness = lambda row: Pong({BOOK.id: 3}, (), {}, sums={2: "older"}, witnessed={2: (4, row.checksum())})  # noqa: E731
    core = loaded()
    core.books[2] = CHANGED
    compared(core, [pong(sums={2: BOOK.checksum()}, unverified=(2,)), witness(BOOK)])
    assert core.books[2].seq == -1 and core.damaged[2] == "differs from the copy 1 peers hold at seq 4"
    core = loaded()
    compared(core, [pong(sums={2: CHANGED.checksum()}, unverified=(2,)), witness(BOOK)])
    assert 2 not in core.unverified and 2 not in core.disputed and core.books[2] == BOOK
    core = loaded()  # without the witness: one against one, served by no one
    compared(core, [pong(sums={2: CHANGED.checksum()}, unverified=(2,)), pong(seq=3, sums={2: "older"})])
    assert 2 in core.disputed


def test_a_replica_behind_tells_the_row_a_peer_handed_it_even_if_its_disk_refused_it() -> None:
    core = replica(mode="bazar")
    newer = replace(BOOK, quantity=19, seq=5)
    catch_up = Scripted(core, core._adopt_newer(core.peers[0], Pong({2: 5}, ((newer, ()),), {}), core.generation))
    assert isinstance(catch_up.asks, Disk) and catch_up.asks.method == "write"
    catch_up.fail(DiskFailed("database or disk is full"))
    assert catch_up.done and core.books[2] == BOOK, "not stored"
    told = run(core, core.handle(Ping(1, {2: 4})))
    assert told.witnessed == {2: (5, newer.checksum())}
    again = run(core, core.handle(Ping(1, {}, told.epoch, 0, 0, (told.epoch, told.position))))
    assert again.witnessed == {} and again.seqs == {}, "nothing changed since: nothing told again"


def test_buys_to_add_that_are_none_go_to_no_disk_and_say_nothing_of_it() -> None:
    """A heartbeat's fetch of buys mostly brings none (96 % of them under load, issue 28). The
    real store commits nothing for none, so it answered them as a commit that succeeded: a
    replica whose disk was full said it had recovered. None now go to no disk at all."""
    core = replica(mode="bazar")
    core.disk_trouble = "database or disk is full"
    stored = Scripted(core, core._stored("add_buys", BOOK.id, []))
    assert stored.done and stored.result is True, "nothing to store: no trip to the disk"
    assert core.disk_trouble == "database or disk is full", "and no word that the disk took writes again"
    for method in ("forget", "expire"):  # the same of buys to forget that are none (the review's find)
        none = Scripted(core, core._stored(method, []))
        assert none.done and none.result is True and core.disk_trouble == "database or disk is full"
    some = Scripted(core, core._stored("add_buys", BOOK.id, [("b1", BOOK.seq)]))
    assert isinstance(some.asks, Disk) and some.asks.method == "add_buys"
    some.answer(None)
    assert some.result is True and core.disk_trouble is None


def test_a_replica_whose_lease_lapsed_answers_no_copy_when_no_peer_answers() -> None:
    """Simulator seed 2028704065: "the last replica decides" (S1, S3) only while its lease holds;
    lapsed, it may be the one the writes left out (W2)."""
    silent = {"Get": NoAnswer(refused=False)}
    core = replica(mode="bazar")
    assert not core.lease_ok()
    assert isinstance(run(core, core.handle(Read(2)), silent), Degraded)  # no copy: out of touch (W4)
    core.peers[0].lease_until = core.now + 1.0  # one peer's lease: no write can have left us out
    assert run(core, core.handle(Read(2)), silent) == Found(BOOK)


def test_search_by_topic_finds_what_reading_every_book_finds_and_follows_a_reset() -> None:
    """Issue 26 item 4: the topic index answers as the scan of every book did, in id order, for
    whole topics, parts of them, case apart, and nothing; new rows (a reset) are indexed anew."""
    from nodes.core.books import generate_catalog

    core = replica(mode="bazar")
    core.books = {b.id: b for b in generate_catalog(3000, seed=9)}
    scan = lambda topic: [b for b in sorted(core.books.values(), key=lambda b: b.id)  # noqa: E731
                          if topic.casefold() in b.topic.casefold()]
    for topic in ("Distributed Systems", "systems", "GRADUATE", "o", "t", "", "no such topic", "Cooking"):
        assert core.search(topic) == scan(topic), topic
    core.books = {b.id: b for b in generate_catalog(50, seed=10)}  # a reset: other rows
    assert core.search("o") == scan("o") and all(b.id <= 50 for b in core.search("o"))


def test_a_search_answers_in_pages_that_put_together_are_the_whole_answer() -> None:
    """Issue 26: "t" holds most of a 100,000-book catalog, 6 MB an answer; a shop asks for a
    page (``?limit=&offset=``), in the order of the ids, and the pages add up to every hit."""
    from nodes.core.books import generate_catalog
    from nodes.core.messages import Hits, Search
    from nodes.core.wire import request_of

    core = replica(mode="bazar")
    core.books = {b.id: b for b in generate_catalog(3000, seed=9)}
    whole = core.search("t")
    assert len(whole) > 1000
    pages = [core.search("t", 250, offset) for offset in range(0, len(whole) + 250, 250)]
    assert [b for page in pages for b in page] == whole and pages[-1] == []
    assert core.search("t", 5, 3) == whole[3:8] and core.search("T", None, 10) == whole[10:]
    assert run(core, core.handle(Search("t", 5, 3)), {}) == Hits(tuple(whole[3:8]))
    assert (Search("Cooking").key, Search("Cooking").query) == ("cooking", "")
    assert Search("Cooking", 20).key == "cooking?limit=20" and Search("t", 20, 40).query == "?limit=20&offset=40"
    # A topic is never taken for a page (a cached search served to another's page): review.
    assert Search("t?limit=5").key != Search("t", 5).key and Search("100%").key == "100%25"
    assert request_of(Search("a b", 20, 40))[1] == "/query/topic/a%20b?limit=20&offset=40"


def test_w2_a_write_outwaiting_a_silent_peer_answers_at_its_lease_end_not_an_offer_later() -> None:
    """The write left catalog1 out (its check got no answer) and outwaits the lease we granted
    it, offering it the update meanwhile. An offer sent just before the lease ends is not
    waited for past that end: in a real run the write answered 0.3 s late, past an order
    replica's time-out under load (tests/e2e W8, 2026-12-05)."""
    core = replica(mode="bazar")
    core.peers[0].granted_until = 1.0
    write = Scripted(core, core.handle(Write(2, quantity=10)), now=0.1)
    write.answer([NoAnswer(refused=False), Granted(BOOK.seq)], at=0.6)  # catalog1's check timed out
    assert [to for to, _update in write.sends()] == ["catalog2"]  # the update, to catalog2 only
    write.answer([Applied(BOOK.seq + 1)], at=0.61)
    offers = []
    while not write.done and len(offers) < 20:
        if isinstance(write.asks, Gather):
            (offer,) = write.asks.sends
            assert offer.to == "catalog1" and offer.message.late
            offers.append((core.now, offer.timeout))
            write.answer([NoAnswer()], at=core.now + offer.timeout)  # catalog1 stays silent
        elif isinstance(write.asks, Sleep):
            write.answer(None, at=write.asks.until)
        else:
            write.answer(None)
    assert offers, "catalog1 was offered the update while its lease ran"
    assert all(sent + timeout <= 1.0 + 1e-9 for sent, timeout in offers), offers
    assert isinstance(write.result, Written) and write.result.book.seq == BOOK.seq + 1
    assert core.now <= 1.0 + 1e-9  # answered once the lease ran out, no later


def test_a_write_of_ours_during_a_heartbeat_is_not_taken_for_a_damaged_row() -> None:
    """Under load (2026-12-05) healthy replicas took their rows for damaged about twice a
    second: the heartbeat kept each peer's seqs as the very dict of its ping answer, and a
    write of ours fanning out while the heartbeat waited (here: on a fetch of buys) raised the
    seq in it. The rows were then compared with that answer's seq and the old row's checksum:
    disputed (here) or damaged (both peers' answers changed so), and writes refused meanwhile."""
    core = replica(mode="bazar")
    beat = Scripted(core, core.heartbeat())
    assert [type(message).__name__ for _to, message in beat.sends()] == ["Ping", "Ping"]
    seqs = {BOOK.id: BOOK.seq}
    pongs = [Pong(dict(seqs), (), {BOOK.id: 1}, sums={BOOK.id: BOOK.checksum()}),  # it holds a buy we lack
             Pong(dict(seqs), (), {}, sums={BOOK.id: BOOK.checksum()})]
    beat.answer(pongs, at=1.0)
    assert [type(message).__name__ for _to, message in beat.sends()] == ["FetchBuys"]
    # Meanwhile a write of ours goes through both peers.
    write = Scripted(core, core.handle(Write(2, quantity=10)), now=1.01)
    write.answer([Granted(BOOK.seq), Granted(BOOK.seq)])
    write.answer([Applied(BOOK.seq + 1), Applied(BOOK.seq + 1)])
    assert isinstance(write.until_done(), Written)
    beat.answer(BuysOf(()), at=1.05)
    for _ in range(10):
        if isinstance(beat.asks, Sleep):
            break
        beat.answer(None)
    assert isinstance(beat.asks, Sleep), f"the heartbeat asks {beat.asks!r}"
    assert not core.damaged and not core.disputed and core.books[2].seq == BOOK.seq + 1


def test_a_peer_holding_fewer_buys_is_asked_for_them_only_once_rounds_in_a_row_found_it_so() -> None:
    """Under load a heartbeat's fetch of buys was a tenth of the cluster's requests, and 96 % of
    them brought nothing: the peer held fewer buys only because a write was still on its way
    (issue 28). Such a peer is asked on the FETCH_DEFER_ROUNDS + 1-th round in a row that finds
    it so; it may yet hold one we lack (seed 2027609448). One holding more is asked at once."""
    core = replica(mode="bazar", buys={"buy-1": (BOOK.id, BOOK.seq)})
    beat = Scripted(core, core.heartbeat())
    fewer = Pong({BOOK.id: BOOK.seq}, (), {BOOK.id: 0}, buy_digests={BOOK.id: "0" * 16},
                 sums={BOOK.id: BOOK.checksum()})
    same = Pong({BOOK.id: BOOK.seq}, (), {BOOK.id: 1}, buy_digests={BOOK.id: core._buy_digest_of(BOOK.id)},
                sums={BOOK.id: BOOK.checksum()})
    asked_in: list[int] = []
    for round_ in range(1, FETCH_DEFER_ROUNDS + 2):
        assert [type(message).__name__ for _to, message in beat.sends()] == ["Ping", "Ping"]
        beat.answer([fewer, same], at=round_ * HEARTBEAT_S)
        while not isinstance(beat.asks, Sleep):
            if any(isinstance(message, FetchBuys) for _to, message in beat.sends()):
                asked_in.append(round_)
                beat.answer(BuysOf(()))
            else:
                beat.answer(None)
        beat.answer(None, at=beat.asks.until)
    assert asked_in == [FETCH_DEFER_ROUNDS + 1], asked_in
    more = Pong({BOOK.id: BOOK.seq}, (), {BOOK.id: 2}, buy_digests={BOOK.id: "0" * 16},
                sums={BOOK.id: BOOK.checksum()})
    beat.sends()
    beat.answer([more, same], at=(FETCH_DEFER_ROUNDS + 2) * HEARTBEAT_S)
    assert [type(message).__name__ for _to, message in beat.sends()] == ["FetchBuys"], "more: at once"


def test_a_deferred_fetch_of_buys_that_fails_is_asked_again_the_next_round() -> None:
    """A review (2026-12-08): the deferral was ended before the fetch went out, so one that got
    no answer waited FETCH_DEFER_ROUNDS more rounds, not the one the heartbeat promises."""
    core = replica(mode="bazar", buys={"buy-1": (BOOK.id, BOOK.seq)})
    beat = Scripted(core, core.heartbeat())
    fewer = Pong({BOOK.id: BOOK.seq}, (), {BOOK.id: 0}, buy_digests={BOOK.id: "0" * 16},
                 sums={BOOK.id: BOOK.checksum()})
    same = Pong({BOOK.id: BOOK.seq}, (), {BOOK.id: 1}, buy_digests={BOOK.id: core._buy_digest_of(BOOK.id)},
                sums={BOOK.id: BOOK.checksum()})
    asked_in: list[int] = []
    for round_ in range(1, FETCH_DEFER_ROUNDS + 3):
        beat.sends()
        beat.answer([fewer, same], at=round_ * HEARTBEAT_S)
        while not isinstance(beat.asks, Sleep):
            if any(isinstance(message, FetchBuys) for _to, message in beat.sends()):
                asked_in.append(round_)
                beat.answer(NoAnswer())  # the peer does not answer the fetch
            else:
                beat.answer(None)
        beat.answer(None, at=beat.asks.until)
    assert asked_in == [FETCH_DEFER_ROUNDS + 1, FETCH_DEFER_ROUNDS + 2], asked_in


def test_a_peer_holding_as_many_confirmed_buys_as_we_do_is_not_taken_for_one_behind() -> None:
    """A review (2026-12-08): a peer counts no buy of an unconfirmed write; we counted ours, so
    a peer holding as many confirmed buys as we do, other ones (seed 2027609448's case), looked
    behind and was asked only after the deferral."""
    core = replica(mode="bazar", buys={"buy-1": (BOOK.id, BOOK.seq)})
    newer = replace(BOOK, seq=BOOK.seq + 1, quantity=BOOK.quantity - 1)
    core.tentative[BOOK.id] = (Update(newer, 0, "t", ("buy-2",)), (1, 2))
    core._remember_buy("buy-2", BOOK.id, newer.seq)
    assert core.buy_count[BOOK.id] == 2 and core._buy_count_of(BOOK.id) == 1
    beat = Scripted(core, core.heartbeat())
    other = Pong({BOOK.id: BOOK.seq}, (), {BOOK.id: 1}, buy_digests={BOOK.id: "0" * 16},
                 sums={BOOK.id: BOOK.checksum()})
    same = Pong({BOOK.id: BOOK.seq}, (), {BOOK.id: 1}, buy_digests={BOOK.id: core._buy_digest_of(BOOK.id)},
                sums={BOOK.id: BOOK.checksum()})
    beat.sends()
    beat.answer([other, same], at=HEARTBEAT_S)
    sent = []
    while not isinstance(beat.asks, Sleep) and not sent:
        sent = [m for _to, m in beat.sends() if isinstance(m, FetchBuys)]
        if not sent:
            beat.answer(None)
    assert sent, "as many confirmed buys, other ones: asked at once"


def test_a_heartbeat_round_waits_a_round_not_a_ping_time_out_for_a_peer_known_down() -> None:
    """Under load with catalog1 hung, each round waited 0.4 s for it before taking catalog2's
    lease, and the lease from the one live peer lapsed now and then (2026-12-05)."""
    core = replica(mode="bazar")
    core.peers[0].up = False  # catalog1: silent since
    beat = Scripted(core, core.heartbeat())
    assert isinstance(beat.asks, Gather)
    timeouts = {send.to: send.timeout for send in beat.asks.sends}
    assert timeouts == {"catalog1": HEARTBEAT_S, "catalog2": PING_TIMEOUT_S}


def test_w4_a_replica_out_of_touch_whose_hops_find_no_one_answers_503_not_try_again() -> None:
    """Its lease lapsed and no peer answers (a partition): "try again" sent the caller back to it,
    and an order replica of ours read again for its whole 3 s retry budget (traced under load,
    catalog1 partitioned, 2026-12-05). Now it says it is out of touch, and the caller goes
    elsewhere. The hops are still made: a peer healed a moment ago answers them."""
    core = replica(mode="bazar")
    for peer in core.peers:
        peer.up, peer.lease_until = False, NEVER
    assert core.out_of_touch()
    read = Scripted(core, core.handle(Read(2)), now=5.0)
    assert [to for to, _message in read.sends()] == ["catalog1"]
    read.answer(NoAnswer(refused=False))
    assert [to for to, _message in read.sends()] == ["catalog2"]
    read.answer(NoAnswer(refused=False))
    assert read.done and isinstance(read.result, Degraded), f"it asks {read.asks!r}"
    healed = Scripted(core, core.handle(Read(2)), now=5.1)
    healed.answer(Found(BOOK))  # catalog1 is back
    assert isinstance(healed.until_done(), Found)


def test_a_replica_out_of_touch_still_grants_the_frontend_its_cache_lease() -> None:
    """Issue 28: "degraded" routes the front-end around it, and the lease keeps the cache on:
    out of touch, it writes nothing, and a write of its own would keep the lease's promise
    (told the front-end, or outwaited the lease) as any write does. One the front-end may
    have missed an invalidation from still grants none until its last lease has run out."""
    core = replica(mode="bazar")
    core.has_frontend = True
    for peer in core.peers:
        peer.up, peer.lease_until = False, NEVER
    core.now = 5.0
    assert core.out_of_touch()
    answer = core.on_health("frontend")
    assert isinstance(answer, Degraded) and answer.lease_s == FRONTEND_LEASE_S, answer
    assert core.on_health("order0") == Degraded(answer.message), "an order replica takes no lease"
    core.frontend_withheld = True
    answer = core.on_health("frontend")
    assert isinstance(answer, Degraded) and answer.lease_s == 0.0, answer


def test_a_write_its_disk_refused_but_its_peers_took_is_told_to_the_frontend_again() -> None:
    """A review of the lease above: the peers took the write, the front-end's invalidation was
    lost and then our disk refused the commit. The write, unconfirmed, returned before the
    invalidation was sent again, and with the disk full our lease kept the old copy cached
    for as long as it stayed full. Now it is told again, or the lease is withheld and outwaited."""
    core = replica(mode="bazar")
    core.has_frontend = True
    for peer in core.peers:
        peer.lease_until = 100.0
    core.now = 4.9
    assert core.on_health("frontend") == Healthy(FRONTEND_LEASE_S)
    write = Scripted(core, core.handle(Write(BOOK.id, quantity=BOOK.quantity - 1, base_seq=BOOK.seq,
                                             buy_id="b-1", since=5.0, take=1)), now=5.0)
    write.answer([Granted(BOOK.seq), Granted(BOOK.seq)])
    write.answer([Applied(BOOK.seq + 1, ()), Applied(BOOK.seq + 1, ()), NoAnswer()], at=5.1)
    assert isinstance(write.asks, Disk) and write.asks.method == "write", write.asks
    write.fail(DiskFailed("database or disk is full"))
    assert write.sends() == [("frontend", Invalidate(BOOK.id, BOOK.seq + 1))], write.asks
    write.answer(NoAnswer(), at=5.6)
    write.answer(NoAnswer(), at=6.1)
    assert core.frontend_withheld and isinstance(write.asks, Sleep), write.asks
    write.answer(None, at=write.asks.until)
    assert isinstance(write.result, Unconfirmed), write.result
    answer = core.on_health("frontend")
    assert isinstance(answer, Degraded) and answer.lease_s == 0.0, answer


def test_an_unconfirmed_row_newer_than_a_peers_vouched_copy_is_not_handed_to_a_hop() -> None:
    """Simulator seed 2033306536: back from a crash with a row changed on disk (checksum and
    all) at a seq its peers had not all reached, a replica answered a peer's hop with it, the
    peer it asked vouching for the seq before (a write it was still sending out)."""
    core = loaded()
    core.books[2] = replace(BOOK, quantity=902, seq=BOOK.seq + 1)  # as if loaded so
    older = Found(BOOK)
    answer = run(core, core.handle(Get(2, (), 1, BOOK.seq)), {"Get": older})
    assert answer == Found(BOOK) and 2 in core.unverified


def test_a_write_read_back_at_start_that_no_peer_took_gives_way_instead_of_being_offered() -> None:
    """Simulator seed 2033517330: back from a crash with an unconfirmed write whose row was
    changed on disk (checksum and all), a replica offered it to a peer behind, which took it:
    904 copies at seq 1 instead of 11. Offered only to peers holding its seq, it now gives way
    once every peer's current word is behind it and none holds its buys."""
    changed = replace(BOOK, quantity=904, seq=BOOK.seq + 1)
    core = CatalogReplica(0, 3, has_frontend=False, mode="bazar")
    start = Scripted(core, core.start())
    for asked, answer in (("load_generation", 0), ("load_books", {BOOK.id: changed}),
                          ("load_buys", {"b-1": (BOOK.id, changed.seq)}), ("load_damaged", {}),
                          ("load_tentative", [BOOK.id])):
        assert isinstance(start.asks, Disk) and start.asks.method == asked
        start.answer(answer)
    assert start.done and BOOK.id in core.tentative and BOOK.id in core.unverified
    behind = Pong({BOOK.id: BOOK.seq}, (), {}, sums={BOOK.id: BOOK.checksum()})
    for peer in core.peers:
        core._take_view(peer, behind)
    settle = Scripted(core, core._settle_tentative())
    assert [type(m).__name__ for _to, m in settle.sends()] == ["FetchBuys", "FetchBuys"], "no row offered"
    settle.answer([BuysOf(()), BuysOf(())])
    assert isinstance(settle.asks, Disk) and settle.asks.method == "forget"
    settle.answer(None)
    assert settle.done and BOOK.id not in core.tentative and core.books[BOOK.id].seq == -1
    assert "b-1" not in core.buys and BOOK.id in core.damaged


def test_the_very_same_write_offered_by_another_writer_is_taken_where_the_disk_refused_it() -> None:
    """Simulator seed 2042003494: one buy retried through two writers, each left with the same
    write unconfirmed, one of them only in memory (its disk refused the commit). Its buys were
    not remembered there, so the other's offer was answered 'newer': each took the other's
    copy, its own write, for a rival and gave way, forgetting the buy, and the copy it took
    stayed with no buy to show for it (a copy gone, no order for it)."""
    core = replica(mode="bazar")
    write = Scripted(core, core.handle(Write(2, quantity=19, base_seq=4, buy_id="buy-a", since=0.0, take=1)))
    write.answer([Granted(BOOK.seq), Granted(BOOK.seq)])
    write.answer([NoAnswer(), NoAnswer()])  # lost, not refused: either peer may hold it
    assert isinstance(write.asks, Disk) and write.asks.method == "write"
    write.fail(DiskFailed("database or disk is full"))
    assert isinstance(write.until_done(), Unconfirmed) and 2 in core.unstored and "buy-a" not in core.buys
    ours = core.books[2]
    offer = Update(ours, 1, "their-token", ("buy-a",), late=True)
    answer = run(core, core.handle(offer))
    assert isinstance(answer, Applied) and answer.seq == ours.seq
