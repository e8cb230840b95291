"""The event feed: every event, in order, page after page; and on PostgreSQL an event whose
transaction commits after later ones were read is still handed out (a plain `id > cursor`
reader skips it, which this test shows too)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import unit_of_work
from app.ledger.domain import FeedCursor
from app.ledger.models import OutboxEvent
from app.ledger.queries import feed_page
from app.ledger.writer import event_row
from app.rows import write


def _emit(session: Session, n: int, tag: str) -> None:
    with unit_of_work(session):
        write(session, [event_row("test.happened", "test", i, {"tag": tag, "i": i}) for i in range(n)])


def _read_all(session: Session, after: FeedCursor, limit: int) -> tuple[list[int], FeedCursor]:
    ids = []
    while True:
        page = feed_page(session, after, limit)
        session.rollback()
        if not page:
            return ids, after
        ids += [e.id for _, e in page]
        after = page[-1][0]


def test_the_feed_hands_out_every_event_once_in_order_page_by_page(session):
    for n, tag in ((3, "a"), (1, "b"), (4, "c")):
        _emit(session, n, tag)
    ids, cursor = _read_all(session, FeedCursor.parse(""), limit=3)
    assert ids == sorted(session.scalars(select(OutboxEvent.id)))
    assert len(ids) == 8
    # Nothing new: the same cursor again, an empty page; then only what came since.
    assert feed_page(session, cursor, 3) == []
    session.rollback()
    _emit(session, 2, "d")
    more, _ = _read_all(session, cursor, limit=500)
    assert [e.payload["tag"] for e in session.scalars(select(OutboxEvent).where(OutboxEvent.id.in_(more)))] == ["d", "d"]


def test_a_cursor_from_elsewhere_is_refused():
    for bad in ("x", "1", "1.", ".1", "-1.2", "1.2.3", "9" * 30 + ".1"):
        with pytest.raises(ValueError):
            FeedCursor.parse(bad)
    assert FeedCursor.parse("12.34") == FeedCursor(12, 34) and str(FeedCursor(12, 34)) == "12.34"


def _plain_reader(session: Session, after_id: int) -> list[int]:
    """What a naive feed would do: ids above the last one read."""
    ids = list(session.scalars(select(OutboxEvent.id).where(OutboxEvent.id > after_id).order_by(OutboxEvent.id)))
    session.rollback()
    return ids


@pytest.mark.pg_only
def test_a_late_commit_is_never_skipped_under_eight_writers(session_factory):
    slow, reader = session_factory(), session_factory()
    # A slow transaction writes its event first (the smallest id) and commits last.
    slow.begin()
    write(slow, [event_row("test.late", "test", 0, {"tag": "late"})])
    late_id = slow.scalar(select(OutboxEvent.id).where(OutboxEvent.type == "test.late"))

    def writer(n: int) -> None:
        s = session_factory()
        try:
            for round_ in range(5):
                _emit(s, 3, f"w{n}-{round_}")
        finally:
            s.close()

    seen: list[int] = []
    cursor = FeedCursor()
    naive_seen: list[int] = []
    naive_after = 0
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):  # read while they write
        got, cursor = _read_all(reader, cursor, limit=7)
        seen += got
        naive = _plain_reader(reader, naive_after)
        naive_seen += naive
        naive_after = max(naive_seen, default=0)
    for t in threads:
        t.join()
    got, cursor = _read_all(reader, cursor, limit=7)
    seen += got
    naive = _plain_reader(reader, naive_after)
    naive_seen += naive
    naive_after = max(naive_seen, default=0)
    # While the slow one is open the feed holds back what came after it; the naive reader has read on.
    assert late_id not in seen and seen == []
    assert len(naive_seen) > 0  # (it may already have skipped some: eight writers commit out of order too)
    slow.commit()
    got, cursor = _read_all(reader, cursor, limit=7)
    seen += got
    naive_seen += _plain_reader(reader, naive_after)
    every = sorted(reader.scalars(select(OutboxEvent.id)))
    assert sorted(seen) == every and len(seen) == len(set(seen)) == 8 * 5 * 3 + 1
    assert seen[0] == late_id  # its transaction began first, so it comes first
    assert late_id not in naive_seen  # the plain `id > cursor` reader skipped it for good
    assert len(naive_seen) < len(every)
    for s in (slow, reader):
        s.close()
