"""Writes (S4, S5 of docs/protocol.md, with W1, W2, W7 and W8 of docs/weak-points.md): the
writer's round — queue for the book, check and reserve at the peers, fan out the update with
the front-end's invalidation, and wait out the leases of those left out. The peers' side of
the round is ``reservations.py``. Without ``Rule.RESERVED_WRITES`` a write is the documented one."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any, TypeAlias

from nodes.core.books import Book
from nodes.core.catalog.group_commit import GroupCommit, can_ride, seat
from nodes.core.catalog.reservations import CheckOutcome, Reservations
from nodes.core.catalog.rules import Rule
from nodes.core.catalog.state import (
    INVALIDATE_TIMEOUT_S,
    LOCAL_QUEUE_S,
    RESERVATION_TTL_S,
    WRITE_PATIENCE_S,
    Peer,
    Priority,
    WriteAnswer,
)
from nodes.core.clocks import NEVER, outwait
from nodes.core.effects import Gather, NoAnswer, Send, Sleep
from nodes.core.messages import (
    UNCONFIRMED_BUY,
    Applied,
    Conflict,
    Done,
    Invalidate,
    KnownBuy,
    Newer,
    NotWritten,
    Unconfirmed,
    Update,
    Write,
    Written,
)

#: How a refused round is answered, once its peers are released (``Writes._refusal``).
Refusal: TypeAlias = Callable[[], Awaitable[WriteAnswer]]


async def _answer(answer: WriteAnswer) -> WriteAnswer:
    """A refusal that only answers."""
    return answer


class Refusals(Reservations):
    """How a round that stops before its fan-out is answered, once its peers are released
    (``Writes._refusal`` picks one), and how a write that no peer took is withdrawn."""

    def _cannot_write(self) -> str | None:
        """Why a write begun here now would come to nothing, or None: our disk takes no commit,
        so it could not be stored here (another replica's order replica may take the buy)."""
        if self.disk_trouble is not None:
            return f"catalog{self.index} cannot store writes: {self.disk_trouble}"
        return None

    async def _take_newer(self, book_id: int, newer: list[Book], generation: int) -> Conflict:
        """S5: a peer is ahead. Take the highest copy as current and let the caller retry."""
        newest = max(newer, key=lambda b: b.seq)
        await self._adopt(newest, generation=generation)
        self._mark_valid(book_id)
        return Conflict(self.books[book_id], "outdated")

    async def _done_elsewhere(self, known: KnownBuy) -> Written:
        """A peer holds a buy of this round as done (W7): its first outcome, once settled."""
        await self._invalidate_frontend(known.book)
        if known.settles_in > 0:
            await Sleep(self.now + outwait(known.settles_in))
        return Written(known.book, duplicate=True, of=known.buy_id)

    async def _busy(self, book_id: int) -> Conflict:
        """Another writer holds a peer: our copy as it is now, and the caller tries again."""
        return Conflict(self.books[book_id], "busy")

    async def _done_here(self, book_id: int, buy: str) -> Written:
        """A buy of this round became known here meanwhile (W7): done, once settled, and once
        the front-end has been told (the write that did it may not have reached it)."""
        await self._invalidate_frontend(self.books[book_id])
        if self._settles(buy) > self.now:
            await Sleep(self._settles(buy))
        return Written(self.books[book_id], duplicate=True, of=buy)

    async def _withdraw(self, book_id: int, current: Book, new: Book, buy_ids: tuple[str, ...],
                        maybe_late: bool) -> NotWritten | Unconfirmed:
        """No peer took it, and nothing reached us while we waited for them: we are likely
        the one cut off, and they, still in touch with each other, vouch for the old copy.
        Acknowledged, the write would be read as never made: withdraw it."""
        current = self._newest(current) if self.books[book_id] is not new else current
        if not await self._stored("undo", current, list(buy_ids)):
            # The disk takes no undo now: it stays, as an unconfirmed write, settled later.
            self.tentative.setdefault(book_id, (Update(new, self.index, self._new_token(), buy_ids),
                                                tuple(p.index for p in self.peers)))
            return Unconfirmed(f"catalog{self.index} could not withdraw the write: {self.disk_trouble}")
        self.tentative.pop(book_id, None)
        self.unstored.discard(book_id)
        self.books[book_id] = current
        for buy in buy_ids:
            self._forget_buy(buy)
        self._unmark_valid(book_id)
        self._emit_seq(current)
        if maybe_late:
            return Unconfirmed("out of touch with the peers it missed")
        return NotWritten("out of touch with the peers it missed")


    async def _not_stored(self, update: Update, granted: list[Peer], *, kept: bool,
                          told: bool) -> NotWritten | Unconfirmed:
        """Our disk failed the write's commit (full, failing): the write is not ours. The peers
        that took it keep it and catch-up brings it back here; the buy may or may not count.
        ``kept``: a peer holds it or may (its answer was lost, a hung peer takes it when
        resumed): its seq must not be reused here for another write. Kept as an unconfirmed
        write in memory, it is offered again or gives way as any other, and stored whole once
        confirmed (simulator seed 2027701985: reused, two writes of one seq, a buy remembered
        twice over; seed 2027804390: the one peer that took it crashed, and this replica
        granted another write of its seq). ``told``: the front-end confirmed the invalidation;
        if not, and peers may serve the write, it is told again or its lease outwaited (a
        review, 2026-12-07: with the disk full, our lease kept the old copy cached meanwhile)."""
        book_id, new = update.copy.id, update.copy
        self._unmark_valid(book_id)
        if not kept:
            return NotWritten(f"catalog{self.index} could not store the write: {self.disk_trouble}")
        self.tentative[book_id] = (update, tuple(p.index for p in granted))
        self.unstored.add(book_id)
        self.books[book_id] = new
        self._emit_seq(new)
        if not told:
            await self._invalidate_frontend(new)
        return Unconfirmed(f"catalog{self.index} could not store the write ({self.disk_trouble}); "
                           "its peers may hold it")

    async def _tell_confirmed(self, update: Update, holders: list[Peer]) -> None:
        """``update``, marked confirmed, to ``holders`` again. With four or more replicas the
        peers that took our write hold it as unconfirmed until we say a majority does (W8):
        told before the book is let go, so that our next round's checks find it settled there.
        One that does not hear within WRITE_PATIENCE_S (hung since it answered) is not waited
        for longer: it settles the write by itself."""
        late = replace(update, late=True)
        await Gather([self._send(p, late, timeout=WRITE_PATIENCE_S) for p in holders],
                     enough=lambda _replies: True, patience=WRITE_PATIENCE_S)


class Writes(Refusals, GroupCommit):
    """A write's round at the writer."""

    async def write(self, request: Write) -> WriteAnswer:
        """``request.since``: when the operation behind this write first tried (a buy's first
        attempt); the older one wins a conflict, so a buy that keeps retrying cannot starve."""
        book_id = request.book
        self.book(book_id)
        changes = {k: v for k, v in (("quantity", request.quantity), ("price", request.price)) if v is not None}
        if Rule.RESERVED_WRITES not in self.rules:
            return await self._documented_write(book_id, changes)
        if request.attempt is None:
            return await self._write(book_id, request, changes)
        # W7: a copy of an attempt (the network delivered it twice) runs no round of its own:
        # queued behind its twin, it could carry the buy out after the twin was refused and the
        # order replica had answered "nothing was bought". Nor is it refused: its refusal could
        # reach the order replica before the twin's answer, and the buy, carried out by the
        # twin, be answered "not done" (simulator seed 512 with drifting clocks). It waits for
        # the twin and gets its answer.
        answer: WriteAnswer = await self.attempts.run(request.attempt, partial(self._write, book_id, request, changes),
                                                      again=False)
        return answer

    async def _write(self, book_id: int, request: Write, changes: dict[str, Any]) -> WriteAnswer:
        if can_ride(request) and book_id in self._locked:
            carried = await self._ride(book_id, request)  # a round under way may carry it
            if carried is not None:
                return carried
        await self._lock(book_id, float("inf"))
        token: str | None = None
        held = True

        def let_go() -> None:
            """Release the book here (our reservation, the lock) once, whichever comes first:
            the round's end, or its fan-out taken by a peer (``_fan_out``)."""
            nonlocal held
            if held:
                held = False
                if token is not None:
                    self._release(book_id, token)
                    self.in_flight.pop(book_id, None)
                self._unlock(book_id)

        try:
            priority: Priority = (request.since if request.since is not None else self.now, self.index)
            buy_id = request.buy_id
            if (reused := self._reused(buy_id, book_id)) is not None:
                return reused
            if buy_id is not None and buy_id in self._tentative_buys():
                return Conflict(self.books[book_id], UNCONFIRMED_BUY)  # neither done nor not yet
            if buy_id is not None and buy_id in self.buys:
                # Carried out already (through another replica, a hedge of this very buy, say):
                # nothing to write, so the book is let go before the wait below. Held through
                # it — up to a lease, for a buy learnt from a peer's update (``_settle_after_grants``)
                # — it queued every later buy of the book here behind it, each of those was
                # hedged and carried out elsewhere in turn and then waited here the same way:
                # under full load with catalog1 cut off, one book's buys at catalog2 took ~1 s
                # each for seconds on end, and the p99 of the run rose to 0.55 s.
                let_go()
                # The first attempt may have stalled before telling the front-end: tell it now.
                await self._invalidate_frontend(self.books[book_id])
                if self._settles(buy_id) > self.now:
                    await Sleep(self._settles(buy_id))
                return Written(self.books[book_id], duplicate=True)
            if book_id in self.tentative:
                # W2 (docs/weak-points.md, unconfirmed writes): our copy may yet give way, and the
                # peers may hold another write of its seq; a check compares seqs only, so a write
                # built on it would carry its effect over theirs. Not until it has settled.
                return Conflict(self.books[book_id], "busy")
            if book_id in self.unverified or book_id in self.disputed or book_id in self.damaged:
                # Not confirmed by a peer since start, or differing from one: ours may have been
                # changed on disk, and a write would spread the change (``_compare_rows``); a
                # damaged one (seq -1, which no check may name) is a heartbeat from repair.
                return Conflict(self.books[book_id], "busy")
            if (refusal := self._cannot_write()) is not None:
                return NotWritten(refusal)  # said before anything was sent: nothing was written
            token = self._new_token()
            # Holding nothing yet, this writer can wait its turn at home whoever holds the book:
            # a wait that holds nothing cannot close a cycle. Checks at peers use wait-die.
            if not await self._reserve_or_wait(book_id, self.index, token, priority, queue_s=LOCAL_QUEUE_S):
                return Conflict(self.books[book_id], "busy")
            # No rider boards a write on top of an unconfirmed one: its copies would have to be
            # taken from a copy that may yet give way (see _copies_left).
            riders = self._board(book_id, request) if can_ride(request) and book_id not in self.tentative else []
            since = min([priority[0], *(r.request.since for r in riders if r.request.since is not None)])
            # Our own reservation of the book takes the age our checks carry: the peers' wait-die
            # compares a check with the writer they hold the book for, and a writer whose
            # riders made its checks older than its reservation here waited at a peer that was
            # waiting at it in turn; both refused after 0.3 s, again and again (two writers of
            # one book beside a hung replica, 3 s of 409s and then 503, issue 28).
            self._reprioritize(book_id, token, (since, self.index))
            answer = await self._reserved_write(
                book_id, changes, request.base_seq, buy_id, token, (since, self.index),
                take=request.take if buy_id is not None else None,
                riders=tuple(seat(r) for r in riders), let_go=let_go)
            return self._share(book_id, answer, buy_id, riders)
        finally:
            let_go()

    async def _reserved_write(
        self, book_id: int, changes: dict[str, Any], base_seq: int | None, buy_id: str | None, token: str,
        priority: Priority, *, take: int | None = None, riders: tuple[tuple[str, int], ...] = (),
        let_go: Callable[[], None] = lambda: None,
    ) -> WriteAnswer:
        """One write round: check and reserve at the peers, then the update fan-out. A buy's
        write (``take`` copies) may carry ``riders``, other buys of the book (id, copies),
        in the same round; the copies all come off the current copy.

        Whether the round stops is decided while the peers are held; they are released on
        leaving the ``async with`` (unless the update is to release them), and only then is
        a refusal carried out — adopting a newer copy, telling the front-end, sleeping until
        a buy settles — so no peer stays reserved through any of that."""
        started, generation = self.now, self.generation
        if take is not None:
            take += sum(copies for _buy, copies in riders)
        outcome = await self._check_peers(book_id, token, buy_id, priority, tuple(buy for buy, _copies in riders))
        async with self._holding(book_id, token, outcome.granted) as held:
            current = self.books[book_id]
            refusal = self._refusal(book_id, outcome, started, generation, buy_id, riders, take, changes, base_seq)
            if refusal is None:
                held.hand_over()  # the update releases each peer's reservation
                left = self._copies_left(book_id, changes, take)
                if left is not None:
                    changes = {"quantity": left}
        if refusal is not None:
            if not outcome.newer:
                # Only an answer is left, perhaps after a buy settles: let the next round start.
                let_go()
            return await refusal()
        return await self._fan_out(book_id, current, changes, buy_id, riders, token, outcome, let_go)

    def _refusal(self, book_id: int, outcome: CheckOutcome, started: float, generation: int,
                 buy_id: str | None, riders: tuple[tuple[str, int], ...], take: int | None,
                 changes: dict[str, Any], base_seq: int | None) -> Refusal | None:
        """Whether the round stops before its fan-out, decided while the peers are held: how to
        answer (carried out once they are released), or None to go on."""
        if outcome.reused is not None:
            return partial(_answer, outcome.reused)  # a peer knows the id for another book
        if outcome.newer:
            return partial(self._take_newer, book_id, outcome.newer, generation)
        if outcome.known_buy is not None:
            return partial(self._done_elsewhere, outcome.known_buy)
        if outcome.busy:
            return partial(self._busy, book_id)
        current = self.books[book_id]
        reserved, replicas = len(outcome.granted) + 1, len(self.peers) + 1
        if Rule.MAJORITY in self.rules and reserved <= replicas // 2:
            # W8: without a majority, another side of a partition may be writing this book
            # too. Refuse, and change nothing: availability is what a partition costs.
            return partial(_answer, NotWritten(f"only {reserved} of {replicas} catalog replicas reachable; "
                                               f"{replicas // 2 + 1} needed"))
        # A buy may have become known here while this write waited its turn or checked (an
        # update or a catch-up carrying it): a retry of a buy done through another replica.
        # Before buys took copies from the current row, its stale base refused it; now say so.
        unsure = self._tentative_buys()
        if (reused := self._reused(buy_id, book_id)) is not None:
            return partial(_answer, reused)
        for buy in (buy_id, *(b for b, _copies in riders)):
            if buy is not None and buy in self.buys and self.buys[buy][0] == book_id:
                if buy in unsure:
                    return partial(_answer, Conflict(current, UNCONFIRMED_BUY))
                return partial(self._done_here, book_id, buy)
        if riders and book_id in self.tentative:  # cannot happen: boarding checks it; never carry them wrong
            return partial(_answer, Conflict(current, "busy"))
        left = self._copies_left(book_id, changes, take)
        if left is not None and left < 0:
            return partial(_answer, Conflict(current, "stale base"))
        if left is None and base_seq is not None and base_seq != current.seq:
            return partial(_answer, Conflict(current, "stale base"))
        if self.now - started > RESERVATION_TTL_S / 2:
            # Our reservations may be about to lapse at the peers: do not fan out on them.
            return partial(_answer, Conflict(current, "slow check"))
        return None

    # ---- the fan-out ------------------------------------------------------------------------------
    async def _fan_out(self, book_id: int, current: Book, changes: dict[str, Any], buy_id: str | None,
                       riders: tuple[tuple[str, int], ...], token: str, outcome: CheckOutcome,
                       let_go: Callable[[], None]) -> WriteAnswer:
        """The update to every peer the round reserved, and the invalidation to the front-end;
        then the write is made durable here, and those it left out are waited out (W2).
        ``let_go`` releases the book here for the next round."""
        new = replace(current, seq=current.seq + 1, **changes)
        buy_ids = (buy_id, *(buy for buy, _copies in riders)) if buy_id else ()
        excluded = tuple(p.index for p in outcome.unreachable) if Rule.MAJORITY in self.rules else ()
        # From now on our pings' answers name the new seq, and we vouch for the old copy no
        # more: a peer that takes the update serves the new one and may answer the buy's retry
        # "bought" (W7) while our round waits (seed 2079014380, W2: a stale read). The leases
        # we granted before travel with it for such a retry to outwait: to the peers left out,
        # and to those it goes to, which may never take it (a review of that mend).
        self.in_flight[book_id] = new.seq
        self._unmark_valid(book_id)
        granted = max((p.granted_until for p in (*outcome.unreachable, *outcome.granted) if not p.refused),
                      default=NEVER)
        update = Update(new, self.index, token, buy_ids, excluded=excluded,
                        settles_in=max(0.0, granted - self.now))
        # The front-end hears of the write alongside the peers, not after them: the invalidation
        # names the new seq, so the front-end caches no older copy from then on (cache.py).
        sends = [self._send(p, update) for p in outcome.granted]
        if self.has_frontend:
            sends.append(Send("frontend", Invalidate(book_id, new.seq), INVALIDATE_TIMEOUT_S))
        def told(replies: list[Any]) -> bool:
            return not self.has_frontend or replies[-1] is not None  # the front-end has answered

        gather = Gather(sends, enough=self._majority_of(Applied, also=told), patience=WRITE_PATIENCE_S)
        sent = self.now
        replies = await gather
        fan_out = replies[:len(outcome.granted)]
        for peer, reply in zip(outcome.granted, fan_out, strict=True):
            if isinstance(reply, Applied):  # what the peer holds now, whatever we manage to store
                peer.seqs[book_id] = max(peer.seqs.get(book_id, -1), reply.seq)
        holders = [peer for peer, reply in zip(outcome.granted, fan_out, strict=True) if isinstance(reply, Applied)]
        # Confirmed once a majority of the replicas holds it (W8: with four or more, we and
        # one peer are not one); a write some peer took but fewer is kept and offered again as
        # an unconfirmed one, and answered "unknown" (it may yet give way to the other side's).
        took = len(holders) >= self._peers_to_hold()
        # A peer whose answer was still out once a majority took it (None) may take it yet.
        maybe = any(reply is None or (isinstance(reply, NoAnswer) and reply.maybe_processed) for reply in fan_out)
        # While the fan-out was out, catch-up may have brought a newer copy, built on this
        # write by a writer a peer showed it to: never step back to ours. Stored as tentative
        # when no peer confirmed it, so that after a crash it is still settled (a restarted
        # writer kept an unconfirmed buy as done: simulator seed 2026931348).
        if self.books[book_id].seq < new.seq:
            stored = await self._stored("write", new, list(buy_ids), bool(outcome.granted) and not took)
        elif buy_ids:
            stored = await self._stored("add_buys", book_id, [(b, new.seq) for b in buy_ids])
        else:
            stored = True
        if not stored:
            heard = isinstance(replies[-1], Done)  # the front-end confirmed the invalidation
            return await self._not_stored(update, outcome.granted, kept=bool(holders) or maybe, told=heard)
        for peer, reply in zip(outcome.granted, replies, strict=False):
            if reply is None:
                continue  # still out when a majority had taken it: not believed down for that
            if isinstance(reply, NoAnswer):
                self._note_unreachable(peer, reply, sent=sent)  # it dropped its valid mark when it reserved
            else:
                self._note_reachable(peer)
        if outcome.granted and not holders and not maybe:
            # Every peer that granted the write refused it (it moved on meanwhile). Kept here
            # alone it would be acknowledged while they answer the old copy: withdraw it.
            if not await self._stored("undo", self._newest(current), list(buy_ids)):
                # Stored, and now the disk takes no undo: kept as the unconfirmed write it is on
                # disk too, it gives way once the heartbeat finds the peers moved on (catch_up).
                self.tentative[book_id] = (update, tuple(p.index for p in outcome.granted))
                self.books[book_id] = new
                self._emit_seq(new)
                return Unconfirmed(f"catalog{self.index} could not withdraw the write: {self.disk_trouble}")
            return NotWritten("no peer took the write")
        unconfirmed = bool(outcome.granted) and not took
        if unconfirmed:
            # An update's answer was lost, not refused: a peer may hold the write. Withdrawn,
            # its seq could be reused for another write while that peer keeps this one. Kept,
            # and offered again until a peer says it holds it or holds another (tentative).
            self.tentative[book_id] = (update, tuple(p.index for p in outcome.granted))
        # In memory before the wait below: a peer that took it may already answer the buy's
        # retry as done, so from now on we must not serve the old copy either.
        if self.books[book_id].seq < new.seq:
            self.books[book_id] = new
            self._mark_valid(book_id)
            self._emit_seq(new)
        for buy in buy_ids:
            self._remember_buy(buy, book_id, new.seq)
        # A peer that granted the write but could not store it (its disk refused the commit)
        # keeps the old copy and may hold a lease on it, granted by anyone: it is left out as
        # an unreachable one is, and waited out for the longest lease (simulator seed 279). So
        # is one whose answer was still out once a majority took it (None): a read's hop may
        # have made it vouch for the old copy again meanwhile. A time-out (the catalog's whole
        # second) outlasted that lease; a write answered 0.2 s after the majority did not
        # (simulator seeds 2048006196, 2048011891, 2048017654: stale reads). So is one that
        # failed fast (a connect time-out, another generation), though answered 0.2 s into the
        # round (a review, 2026-12-07); not one holding a newer copy: it vouches for none older.
        stalled = [p for p, reply in zip(outcome.granted, fan_out, strict=True)
                   if not isinstance(reply, Applied | Newer)]
        left_out = outcome.unreachable + stalled
        holds = self._settle_after(fan_out, left_out, buy_ids, stalled=stalled, arrived=gather.arrived)
        # With four or more replicas the holders (and those it is offered to late) are told
        # that a majority holds it; with three, taking it says so already.
        announced = replace(update, confirmed=took and self._peers_to_hold() > 1)
        if announced.confirmed:
            await self._tell_confirmed(announced, holders)
        if took:
            # Confirmed by a peer and stored here, the write can no longer be withdrawn (only
            # a write no peer took is): the next round of this book may start now, on top of
            # it, and wait out the same leases beside this one. Held through the waits below,
            # every buy of the book queued behind it: a silent peer's lease (up to a second),
            # or the front-end's cache lease (1.5 s) after an invalidation that failed — under
            # full load on a healthy cluster that queue took in all 32 connections, and the
            # whole cluster stood still for 3 s now and then (issue 28).
            let_go()
        if self.has_frontend and not isinstance(replies[-1], Done):
            await self._invalidate_frontend(new)  # a lost invalidation leaves a stale entry: again
        # Offered late only once a peer has confirmed it: a replica left out cannot tell an
        # offer of a write that may yet give way from a settled one.
        missed, maybe_late = await self._deliver_or_outwait(left_out, announced, holds,
                                                            offer=took or not outcome.granted)
        if missed and not took and not unconfirmed and not self.lease_ok():
            return await self._withdraw(book_id, current, new, buy_ids, maybe_late)
        if unconfirmed:
            return Unconfirmed("no peer confirmed the write")
        return Written(new)
