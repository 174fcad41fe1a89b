"""Leases (W2): when a replica may trust its valid set, the leases it grants its peers and the
front-end, and what a write that left someone out waits for before it is answered
(``Rule.LEASES``, ``Rule.FRONTEND_LEASES``; docs/weak-points.md, W2 and W8). Hearing from a
peer is what renews a lease, so this is also where a peer is noted reachable or not (W4);
and the front-end's invalidation is here because losing it withholds the front-end's lease.

Three names, three meanings: ``lease_ok()`` asks whether enough leases hold now;
``_notice_lease()`` is the step that looks and acts on what it sees (a lapse or a renewal
is told once, and a lapse drops the valid set); ``_drop_valid_set()`` is that drop.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from nodes.core.books import Book
from nodes.core.catalog.buys import Buys
from nodes.core.catalog.rules import Rule
from nodes.core.catalog.state import (
    FRONTEND_LEASE_S,
    HEARTBEAT_S,
    INVALIDATE_TIMEOUT_S,
    LEASE_S,
    PING_TIMEOUT_S,
    Peer,
)
from nodes.core.clocks import NEVER, outwait, outwait_told
from nodes.core.effects import Gather, NoAnswer, Send, Sleep
from nodes.core.messages import (
    Applied,
    Degraded,
    Done,
    Healthy,
    Invalidate,
    KnownBuy,
    Update,
)


class Leases(Buys):
    """The state plus W2's leases: trust in the valid set, grants, and outwaiting them."""

    # ---- trusting the valid set ---------------------------------------------------------------
    def lease_ok(self) -> bool:
        """True while enough peers' leases to us hold that no write can have left us out since:
        a write that does waits until the leases its writer and every peer taking it granted
        us have run out. With majority writes, a write that leaves us out is taken by a
        majority of the others, so leases from all but that many minus one suffice (one of
        three: a hung peer does not stop the other two from reading locally); otherwise
        every peer's. A peer that refused our last ping has no process, so it cannot take a
        write: it counts as holding its lease until it is back (and, back, it waits out
        whatever it may have granted before) — if its lease still held when it was found
        gone, and only while its refusal is fresh: it may have started right after the last
        refused ping and leave us out of writes LEASE_S later, so a refusal older than that
        (heard before we were paused, say) holds nothing (simulator seed 2028600941). One
        that had lapsed before (we were cut off from it, say) stays lapsed: writes may have
        left us out meanwhile, and a peer's death does not bring back the trust its silence
        ended (simulator seed 2026930585)."""
        if Rule.LEASES not in self.rules:
            return True
        needed = self._leases_needed()
        holding = sum(1 for peer in self.peers
                      if peer.lease_until > self.now or (peer.refused and peer.held_when_refused
                                                         and self.now < peer.refused_at + LEASE_S))
        return holding >= needed

    def _leases_needed(self) -> int:
        """How many peers' leases a replica needs to vouch for anything (``lease_ok``): with
        majority writes, all but a majority minus one of them; otherwise every peer's."""
        replicas = len(self.peers) + 1
        return replicas - (replicas // 2 + 1) if Rule.MAJORITY in self.rules else len(self.peers)

    def _notice_lease(self) -> bool:
        """Look at the lease, as the heartbeat and every contact do, and say whether it holds.
        A lapse and a renewal are each told once; while it has lapsed, the valid set is dropped
        (``_drop_valid_set``): writes may have happened without us (W2)."""
        holds = self.lease_ok()
        if holds == self._lease_lapsed:  # it changed since we last looked
            self._lease_lapsed = not holds
            self.emit("lease", held=holds)
        if not holds:
            self._drop_valid_set()
        return holds

    def _drop_valid_set(self) -> None:
        """A lapsed lease: vouch for nothing until enough peers have granted a new one."""
        for stale in list(self.valid_ids):
            self._unmark_valid(stale)

    def contact(self) -> None:
        """Something reached us. After a pause, the requests queued while we were stopped
        arrive before anything else: a lapse is noticed first, and the valid set dropped."""
        self._notice_lease()

    def _trusted_valid(self, book_id: int) -> bool:
        """A valid book may be answered from here: not an unconfirmed write of ours, and the
        lease still holds (looked at only for a valid book; a lapse drops the whole set)."""
        return book_id in self.valid_ids and book_id not in self.tentative and self._notice_lease()

    def _mark_valid(self, book_id: int) -> None:
        """Vouch for our copy of ``book_id`` from now on, if the lease lets us vouch at all."""
        if not self.lease_ok():
            return  # without every peer's lease we cannot vouch for anything (W2)
        if book_id in self.damaged or book_id in self.disputed or book_id in self.unverified:
            return  # a row that failed its checksum, or a peer's of its seq, is vouched for by no one
        if self._known_older(book_id):
            return
        if book_id not in self.valid_ids:
            self.valid_ids.add(book_id)
            self.emit("valid", book=book_id, valid=True, seq=self.books[book_id].seq)

    def _known_older(self, book_id: int) -> bool:
        """A newer copy of ``book_id`` than ours is known to exist, which we have not stored
        yet: a lease does not make ours current. A peer's last ping answer showed it (our disk
        refused it, say: without this a replica behind on a full disk vouched for its old copy
        once the peers it could ask were out of reach, simulator seed 2027600854), or a peer's
        update offered it a moment ago and we did not take it (``Peer.offered``), or it is our
        own write, sent out to the peers and not yet stored here (``_fan_out``)."""
        own = self.books[book_id].seq
        return self._newest_seq(book_id) > own or any(peer.ahead(book_id, own, self.now) for peer in self.peers)

    # ---- granting leases ----------------------------------------------------------------------
    def _grant(self, peer: Peer) -> float | None:
        """A lease for ``peer`` (W2): it may trust its valid set for the seconds returned,
        counted on its clock from its ping's sending, and we will not leave it out of a write
        before they have surely run out on ours (``outwait``: no time crosses the wire). Granted
        also to a peer behind us on some books: the answer that carries the lease carries our
        seqs too, and the peer takes the lease only after it has caught up on those books or
        stopped vouching for them (``_take_lease``). Under steady writes some book is nearly
        always in flight, so a lease held back until the pinger was current on every book
        lapsed again and again, and each lapse sent reads and checks to a silent peer."""
        if Rule.LEASES not in self.rules:
            return None
        peer.granted_until = max(peer.granted_until, self.now + outwait(LEASE_S))
        return LEASE_S

    def _take_lease(self, peer: Peer, until: float) -> None:
        """A lease ``peer`` granted in a ping's answer: every book its answers show it ahead of
        us on (``Marks.ahead``, as of this answer: its newer rows have been adopted by now;
        what is still behind is a row it did not hand on, such as an unconfirmed write) stops
        being vouched for here first, so the lease never lets us vouch for a copy it knows
        to be old."""
        for book_id in sorted(peer.marks.ahead):
            self._unmark_valid(book_id)
        peer.lease_until = max(peer.lease_until, until)

    def out_of_touch(self) -> bool:
        """Our lease has lapsed and no peer answers, some of them silent rather than gone (a
        partition, a one-way cut, hung peers): every read we cannot vouch for would hop to
        peers whose answers never come, and no write can reach a majority (W4, W8). Peers that
        refused us have no process: asking them costs nothing, so that alone is not it."""
        return (Rule.LEASES in self.rules and Rule.SKIP_DOWN_PEERS in self.rules and bool(self.peers)
                and not any(peer.up for peer in self.peers) and not all(peer.refused for peer in self.peers)
                and not self.lease_ok())

    def on_health(self, sender: str) -> Healthy | Degraded:
        """The front-end's probe; answered with a lease for its cache, unless an invalidation
        it may have missed withholds it (until its last lease has run out). Out of touch with
        every peer, we say so instead (503), and the front-end (and an order replica asking
        for its catalog) routes around us until a peer answers again — with the lease all the
        same: we keep its promise as any writer does. Withheld, a one-way cut turned the cache
        off while it lasted, doubling the front-end's CPU per request (issue 28)."""
        lease = self._frontend_lease() if sender == "frontend" else None
        if self.out_of_touch():
            return Degraded("Out of touch with every other catalog replica; reads and writes go elsewhere", lease)
        if self.disk_trouble is not None:
            return Degraded(f"Cannot store writes ({self.disk_trouble}); reads and writes go elsewhere until it can",
                            lease)
        return Healthy(lease)

    def _frontend_lease(self) -> float | None:
        """The front-end cache's lease granted now: None where it takes none, 0 while a lease
        an invalidation it may have missed is withheld until the last one has run out."""
        if not self.has_frontend or Rule.FRONTEND_LEASES not in self.rules:
            return None
        if self.frontend_withheld and self.now <= self.frontend_granted_until:
            return 0.0  # a lease that has run out: serve nothing from the cache
        self.frontend_withheld = False
        self.frontend_granted_until = max(self.frontend_granted_until, self.now + outwait(FRONTEND_LEASE_S))
        return FRONTEND_LEASE_S

    # ---- what a write that left replicas out waits for ----------------------------------------
    def _settles(self, buy_id: str) -> float:
        """When a buy we hold may be answered as done: a write that left replicas out is not
        acknowledged before their leases ran out, and neither may its buy be through a retry
        (a known buy). After a restart we do not know those times: a lease's length."""
        if Rule.LEASES not in self.rules:
            return NEVER
        return max(self.buy_settles.get(buy_id, NEVER), self.started_at + outwait(LEASE_S))

    async def _known_buy(self, buy_id: str, book_id: int) -> KnownBuy:
        """A buy carried out already is answered its first outcome, once it has settled (W7).
        The write that carried it out may have stalled before its invalidation reached the
        front-end (its writer cut off from it, say): the front-end is told now, before the buy
        is vouched for, so that its cache no longer answers the copy from before (W2)."""
        await self._invalidate_frontend(self.books[book_id])
        settles = self._settles(buy_id)
        if settles > self.now:
            await Sleep(settles)
        return KnownBuy(self.books[book_id], 0.0, buy_id)

    async def _deliver_or_outwait(self, missed: list[Peer], update: Update,
                                  holds: dict[int, float], *, offer: bool = True) -> tuple[list[Peer], bool]:
        """Before answering a write that ``missed`` could not see, make sure none of them can
        still vouch for the old copy (W2): keep offering each the update until it takes it,
        or until its valid set has surely lapsed. A peer back before its lease lapsed (a short
        cut-off) takes the update; one still away has dropped its valid set by the deadline.
        A peer that refused the connection had no process: only leases granted it since (holds).
        Returns the peers that never took the update, and whether one of them may have taken it
        all the same (an offer whose answer was lost). The deadline is the end of the lease we
        granted each: we know it exactly, having granted it (and grant none meanwhile: our
        copy is newer than theirs). ``holds``: the leases the peers that took the write granted
        the missed ones; those run out before we answer, too."""
        def until(peer: Peer) -> float:
            # A peer that refused us had no process, so nothing we granted it survives; but it
            # may have started again since, and a peer that took this write may have granted it
            # a lease meanwhile (``holds``): that one is waited out all the same (W2).
            return max(NEVER if peer.refused else peer.granted_until, holds.get(peer.index, NEVER))

        missed = [peer for peer in missed if until(peer) > self.now]
        maybe = False
        if Rule.LEASES not in self.rules or not missed:
            return [], maybe
        deadline = max(until(peer) for peer in missed)
        if self.now < deadline:
            self.emit("lease_wait", peers=[p.index for p in missed], ms=round((deadline - self.now) * 1000))
        late = replace(update, late=True)
        if not offer:
            await Sleep(deadline)
            return missed, maybe
        while missed and self.now < deadline:
            # An offer's answer is not waited for past the deadline: by then the peer has
            # dropped its valid set whether it took the update or not, and an offer sent just
            # before would hold the write up to a ping's time-out for nothing (a write that left
            # a silent peer out answered 0.3 s late, past an order replica's time-out under load).
            timeout = min(PING_TIMEOUT_S, deadline - self.now)
            replies = await Gather([self._send(p, late, timeout=timeout) for p in missed])
            maybe |= any(isinstance(reply, NoAnswer) and reply.maybe_processed for reply in replies)
            missed = [p for p, reply in zip(missed, replies, strict=True) if not isinstance(reply, Applied)]
            if missed:
                await Sleep(min(deadline, self.now + HEARTBEAT_S / 2))  # pacing between offers
        return missed, maybe

    def _settle_after(self, fan_out: list[Any], left_out: list[Peer], buy_ids: tuple[str, ...], *,
                      stalled: list[Peer] | None = None, arrived: list[float | None] | None = None,
                      ) -> dict[int, float]:
        """The leases the peers that took the write still let the left-out ones hold (their
        ``holds``, told as seconds left and outwaited on our clock), and the round's buys
        answered done only once those and ours ran out.

        ``stalled``: left-out peers the update was sent to whose answer never came in time.
        A left-out replica vouches only while ``_leases_needed`` peers' leases hold; if fewer
        peers than that are neither us nor a peer that took the write, at least one of its
        leases is ours or one the peers that took it reported (each reports the leases it
        granted every other replica): once those have run out it has stopped vouching. The
        grants those peers make after taking the write carry the new seq, and a replica
        behind it takes such a lease only after it stops vouching for the book. Otherwise
        (not enough peers took it) a stalled peer may hold leases no one reported on, and
        the longest one is waited out from now. A buy in flight when a replica hung waited
        the write's patience and then a whole lease more (about a second, issue 28).

        ``arrived``: when each answer came, on our clock; a hold is counted from then. Counted
        from the end of the fan-out's patience, a buy in flight when a replica hung waited
        that patience twice (1.0 s in a recorded run, issue 28)."""
        left = {peer.index for peer in left_out}
        holds: dict[int, float] = {}
        for at, reply in enumerate(fan_out):
            came = arrived[at] if arrived is not None and at < len(arrived) else None
            since = self.now if came is None else min(came, self.now)
            for index, seconds in reply.holds if isinstance(reply, Applied) else ():
                if index in left:
                    holds[index] = max(holds.get(index, NEVER), since + outwait_told(seconds))
        took = sum(1 for reply in fan_out if isinstance(reply, Applied))
        unknown = len(self.peers) - took - 1  # the others a left-out replica may hold leases of
        if unknown >= self._leases_needed():
            for peer in stalled or ():
                holds[peer.index] = max(holds.get(peer.index, NEVER), self.now + outwait(LEASE_S))
        settle = max([until for until in holds.values()]
                     + [p.granted_until for p in left_out if not p.refused], default=NEVER)
        for buy in buy_ids:
            if settle > self.now:
                self.buy_settles[buy] = max(self.buy_settles.get(buy, NEVER), settle)
        return holds

    async def _invalidate_frontend(self, book: Book) -> None:
        """Tell the front-end to drop ``book`` from its lookup cache, naming the write's seq.
        The documents also drop the book's topic from the search cache; Bazar does not: a
        write changes price or quantity, which search results (id, title, topic) do not
        show, so the cached searches are still right (and it saves every buy a message)."""
        if not self.has_frontend:
            return
        for _attempt in (1, 2):  # a lost invalidation leaves a stale entry behind: try twice
            reply = await Send("frontend", Invalidate(book.id, book.seq), INVALIDATE_TIMEOUT_S)
            if isinstance(reply, Done):
                return
        if Rule.FRONTEND_LEASES in self.rules:
            # It may still serve the old copy from its cache: no new cache lease until the last
            # one we granted has run out, and the write is not answered before then (W2).
            self.frontend_withheld = True
            if self.now < self.frontend_granted_until:
                await Sleep(self.frontend_granted_until)

    # ---- peers heard from, or not (W4) --------------------------------------------------------
    def _note_unreachable(self, peer: Peer, reply: Any = None, sent: float | None = None) -> None:
        """``peer`` did not answer a message sent at ``sent`` (``reply``: what came instead).
        Stale news, and ignored, once it has answered us since, or (a refusal) pinged us and
        been granted a lease since: its new process holds that lease, and a refusal of a
        message sent while it was down, counted as "no process, no lease", left the lease out
        of the writes that should have outwaited it — a write acknowledged while the restarted
        replica vouched for the copy before it (simulator seed 2064010732: a stale read)."""
        refused = isinstance(reply, NoAnswer) and reply.refused
        if sent is not None and (peer.last_heard > sent or (refused and peer.granted_until - outwait(LEASE_S) > sent)):
            return  # a time-out is not: a peer cut off one way pings us, is granted, never hears
        if refused and not peer.refused:
            peer.held_when_refused = peer.lease_until > (sent if sent is not None else self.now)
        peer.refused = refused
        if peer.refused and sent is not None:
            peer.refused_at = sent
        if peer.up:
            peer.up = False
            self.emit("peer", peer=peer.index, up=False)
            for book_id, held in list(self.reservations.items()):
                if held.owner == peer.index:
                    self.waiters.notify(("released", book_id))  # void now (``_holds``): wake its waiters

    def _note_reachable(self, peer: Peer) -> None:
        """``peer`` answered: it is up, and back from no process its old leases are known."""
        self._notice_lease()  # a lapse is noticed before the contact renews the lease
        peer.last_heard = self.now
        if peer.refused:
            # Back from no process at all: it started after refused_at, and will not leave us
            # out of a write before its start + LEASE_S, so until then our trust stands — if
            # it stood when the peer went (see lease_ok).
            if peer.held_when_refused:
                peer.lease_until = max(peer.lease_until, peer.refused_at + LEASE_S)
            peer.refused = False
        if not peer.up:
            peer.up = True
            self.emit("peer", peer=peer.index, up=True)
