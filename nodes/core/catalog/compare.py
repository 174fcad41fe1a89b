"""Storage that checks itself, across replicas (docs/weak-points.md): rows of equal seq must be
equal. Each heartbeat round compares our rows with the peers' word on them (anti_entropy.py's
views), looking only at the books that may differ."""
from __future__ import annotations

from collections import Counter

from nodes.core.books import Book
from nodes.core.catalog.anti_entropy import AntiEntropy
from nodes.core.catalog.changes import View, look
from nodes.core.catalog.state import Peer

#: The most rows one heartbeat round compares: a catalog of 100,000 rows loaded at start is
#: confirmed over a few rounds instead of holding one round (and every answer) for a second.
COMPARE_MOST = 20_000


class CompareRows(AntiEntropy):
    """Rows compared with the peers' of the same seq: damaged, disputed or confirmed."""

    def _compare_rows(self, answered: list[Peer], changed: set[int]) -> None:
        """Storage that checks itself, across replicas: rows of equal seq must be equal. A row
        of ours that differs from a confirmed peer row of its seq (or, all unconfirmed, from the
        row a majority holds) was changed behind our back, checksum and all: it is taken as
        damaged and catch-up repairs it. A row loaded at start is confirmed once a confirmed
        row or a majority's matches it, or every peer answers and none holds its seq or a later
        one. With no majority either way a row is vouched for by no one until one forms.

        Only books that may differ are looked at (``compare_todo``): disputed rows, those the
        peers' answers or our own log changed since the last look, those some peer's word
        (answering this round or not) still shows another row of our seq, and unconfirmed ones
        while they are (all of them when other peers answer than last round)."""
        todo = self.compare_todo | self.disputed | changed
        todo.update(look(self.changes, self.books, self.compared_at))
        self.compared_at = (self.changes.epoch, self.changes.position)
        views = [peer.view for peer in answered]
        with_ = frozenset(peer.index for peer in answered)
        if with_ != self.compared_with:
            # Other peers answer than last round: every unconfirmed row may be decided now
            # (a majority formed, or every peer answered). Otherwise only a change decides one.
            todo.update(self.unverified)
            self.compared_with = with_
        # A whole catalog at start is compared over a few rounds, each going on from where the
        # last stopped: books put back for another look never starve those not reached yet.
        order = sorted(todo)
        start = next((at for at, book_id in enumerate(order) if book_id > self.compare_cursor), 0)
        order = order[start:] + order[:start]
        self.compare_todo = set(order[COMPARE_MOST:])
        self.compare_cursor = order[min(COMPARE_MOST, len(order)) - 1] if len(order) > COMPARE_MOST else -1
        for book_id in order[:COMPARE_MOST]:
            self.disputed.discard(book_id)
            own = self.books.get(book_id)
            if own is None or own.seq < 0:
                continue  # nothing to compare: a repair changes the row, and the log says so
            if book_id in self.tentative or book_id in self.in_flight or book_id in self._locked:
                self.compare_todo.add(book_id)  # a write of ours under way: the next round
                continue
            self._compare_row(book_id, own, views)
            if book_id in self.disputed or self._may_differ(book_id, own):
                self.compare_todo.add(book_id)

    def _may_differ(self, book_id: int, own: Book) -> bool:
        """Some peer's last word (answering or not) holds another row of our seq of ``book_id``,
        or witnessed one: looked at again next round. (A row it does not show, or shows equal,
        decides nothing new until it changes, and a change reaches us as a delta.)"""
        ours = own.checksum()
        for peer in self.peers:
            view = peer.view
            theirs = view.sums.get(book_id)
            if view.seqs.get(book_id) == own.seq and theirs is not None and theirs != ours:
                return True
            seen = view.witnessed.get(book_id)
            if seen is not None and seen[0] == own.seq and seen[1] != ours:
                return True
        return False

    def _compare_row(self, book_id: int, own: Book, views: list[View]) -> None:
        """One row against the peers' word on it (``_compare_rows``)."""
        replicas, majority = len(self.peers) + 1, len(self.peers) // 2 + 1
        ours, sure, unsure, unsaid = own.checksum(), Counter[str](), Counter[str](), 0
        for view in views:
            theirs = view.sums.get(book_id)
            if view.seqs.get(book_id) != own.seq:
                seen = view.witnessed.get(book_id)
                if seen is not None and seen[0] == own.seq:
                    sure[seen[1]] += 1  # a peer behind us was handed a confirmed row of our seq
                continue
            if theirs is None:
                unsaid += 1  # it holds our seq but does not say what (an unconfirmed write of its own)
            else:
                (unsure if book_id in view.unverified else sure)[theirs] += 1
        rival = max((n for sum_, n in (sure or unsure).items() if sum_ != ours), default=0)
        if book_id in self.unverified and sure:  # rows confirmed elsewhere decide
            if rival > sure[ours]:
                self._take_as_damaged(book_id, f"differs from the copy {rival} peers hold at seq {own.seq}")
            elif rival < sure[ours]:
                self.unverified.discard(book_id)
            else:
                self.disputed.add(book_id)
        elif book_id in self.unverified:  # none confirmed: a majority of the replicas decides
            ahead = any(view.seqs.get(book_id, -1) > own.seq for view in views)
            if rival >= majority:
                self._take_as_damaged(book_id, f"differs from the copy {rival} replicas hold at seq {own.seq}")
            elif unsure[ours] + 1 >= majority or (not rival and not ahead and not unsaid
                                                  and len(views) + 1 == replicas):
                self.unverified.discard(book_id)
            elif rival:
                self.disputed.add(book_id)
        elif rival:  # two confirmed rows of one seq differ: a majority of the replicas decides
            if rival > sure[ours] + 1:
                self._take_as_damaged(book_id, f"differs from the copy {rival} replicas hold at seq {own.seq}")
            elif rival == sure[ours] + 1:
                self.disputed.add(book_id)
                self._unmark_valid(book_id)

