"""What a ping and its answer carry (W3, docs/protocol.md "The heartbeat carries what
changed"): each side's changes since the position of its log the other last acknowledged,
put together into a ``View`` of the other (changes.py), and the rows the pinger lacks. An
idle cluster's pings carry nothing but their positions, whatever the catalog's size; every
look at what may differ walks the books changed since the last look, not every book."""
from __future__ import annotations

from nodes.core.books import Book
from nodes.core.catalog.changes import look
from nodes.core.catalog.leases import Leases
from nodes.core.catalog.state import Peer
from nodes.core.messages import Ping, Pong


class AntiEntropy(Leases):
    """Pings out and their answers in, as deltas of each side's log."""

    # ---- the pinger's side ----------------------------------------------------------------------
    def _ping(self, peer: Peer) -> Ping:
        """Our seqs of the books changed since the position ``peer`` acknowledged (all of them
        when it acknowledged none of this log), and what we hold of its log."""
        epoch, acked = peer.acked
        base = acked if epoch == self.changes.epoch and acked <= self.changes.position else 0
        ids, position, more = self.changes.page(base, self.delta_most)
        books = self.books
        return Ping(self.index, {b: books[b].seq for b in ids}, self.changes.epoch, base, position,
                    peer.view.heard(), more, lease=self.disk_trouble is None)

    def _take_view(self, peer: Peer, pong: Pong) -> set[int] | None:
        """Put ``pong``'s delta into what we hold of ``peer``; the books it changed, or None
        when it does not apply to what we hold (then the next ping asks for everything)."""
        view = peer.view
        if not view.takes(pong.epoch, pong.base):
            view.forget()
            return None
        changed = set(pong.seqs)
        unverified = set(pong.unverified)
        for book_id, seq in pong.seqs.items():
            view.seqs[book_id] = seq
            peer.seqs[book_id] = seq
            view.sums[book_id] = pong.sums.get(book_id)
            if book_id in unverified:
                view.unverified.add(book_id)
            else:
                view.unverified.discard(book_id)
            if book_id in pong.witnessed:
                view.witnessed[book_id] = pong.witnessed[book_id]
            else:
                view.witnessed.pop(book_id, None)
            if book_id in pong.buy_counts:
                view.buy_counts[book_id] = pong.buy_counts[book_id]
            if book_id in pong.buy_digests:
                view.buy_digests[book_id] = pong.buy_digests[book_id]
        view.reached(pong.epoch, pong.base, pong.position, pong.more)
        return changed

    def _look_ahead(self, peer: Peer, changed: set[int]) -> None:
        """The books ``peer`` last said it holds newer than we do (``Marks.ahead``): those
        looked at before, those its answer changed and those we changed since."""
        marks = peer.marks
        todo = marks.ahead | changed
        todo.update(look(self.changes, self.books, marks.ahead_at))
        marks.ahead_at = (self.changes.epoch, self.changes.position)
        theirs = peer.view.seqs
        marks.ahead = {b for b in todo if b in self.books and self.books[b].seq < theirs.get(b, -1)}

    # ---- the answerer's side --------------------------------------------------------------------
    def _take_told(self, peer: Peer, message: Ping) -> tuple[set[int], int]:
        """Put a ping's seqs into what we hold of the pinger's log: the books they changed,
        and the position we now hold (0: none, it sends everything next)."""
        told = peer.told
        if message.epoch == told.epoch and 0 < message.position <= told.position:
            return set(), told.position  # an older ping, overtaken by a later one
        if not told.takes(message.epoch, message.base):
            told.forget()
            return set(), 0  # a delta on top of what we do not hold: ask for everything
        told.seqs.update(message.seqs)
        told.reached(message.epoch, message.base, message.position, message.more)
        return set(message.seqs), told.position

    def _owed(self, peer: Peer, changed: set[int]) -> list[tuple[Book, tuple[str, ...]]]:
        """The rows we hold newer than the pinger does, with the buys that made them; not an
        unconfirmed write of ours, nor a row loaded at start that no peer has confirmed. None
        until it has told us every book: one not told yet is not one it lacks."""
        marks, theirs = peer.marks, peer.told.seqs
        if not peer.told.whole:
            marks.owed_at = ("", 0)  # looked at whole once it is
            return []
        todo = marks.owed | changed
        todo.update(look(self.changes, self.books, marks.owed_at))
        marks.owed_at = (self.changes.epoch, self.changes.position)
        newer: list[tuple[Book, tuple[str, ...]]] = []
        owed, unsure = set(), self._tentative_buys()
        for book_id in sorted(todo):
            book = self.books.get(book_id)
            seen = theirs.get(book_id, -1)
            if book is None or book.seq <= seen:
                continue
            owed.add(book_id)
            if len(newer) < self.delta_most and book_id not in self.tentative and book_id not in self.unverified:
                buys = tuple(b for b, seq in self.buys_of.get(book_id, {}).items() if seq > seen and b not in unsure)
                newer.append((book, buys))
        marks.owed = owed
        return newer

    def _delta(self, base: int) -> Pong:
        """What changed in our log since ``base`` (every book when 0; a page of at most
        ``delta_most``), as a ping's answer says it: a book whose write we are fanning out
        counts at the write's seq already, so that no lease granted meanwhile covers the old
        copy for a peer the write may leave out."""
        ids, position, more = self.changes.page(base, self.delta_most)
        if base == 0 and more:
            # A peer taking our whole table in pages hears first of the writes of ours that no
            # peer holds for sure: it must not vouch for its older copy meanwhile (W2), and a
            # book told in a later page would look, until then, as old as it last knew it.
            told = set(ids)
            ids += sorted(b for b in {*self.tentative, *self.in_flight} if b not in told)
        seqs: dict[int, int] = {}
        sums: dict[int, str | None] = {}
        counts, digests, witnessed = {}, {}, {}
        for book_id in ids:
            book = self.books[book_id]
            seqs[book_id] = self._newest_seq(book_id)
            comparable = book.seq >= 0 and book_id not in self.tentative and book_id not in self.in_flight
            sums[book_id] = book.checksum() if comparable else None
            counts[book_id] = self._buy_count_of(book_id)
            digests[book_id] = self._buy_digest_of(book_id)
            seen = self.witnessed.get(book_id)
            if seen is not None and seen[0] > book.seq:
                witnessed[book_id] = seen
        unverified = tuple(sorted(b for b in ids if b in self.unverified))
        return Pong(seqs, (), counts, None, digests, {}, sums, unverified, witnessed,
                    epoch=self.changes.epoch, base=base, position=position, more=more)
