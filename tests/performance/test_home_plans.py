"""My work today reads today's part of the audit trail, not the years behind it."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db import utcnow
from app.home.domain import day_start
from app.home.queries import WorkToday, work_today

pytestmark = pytest.mark.pg_only


def _rows_read(session: Session, table: str) -> int:
    return session.execute(text("SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
                                "WHERE relname = :t"), {"t": table}).scalar_one()


@pytest.mark.parametrize("plans", ["force_custom_plan", "force_generic_plan"])
def test_my_work_today_reads_todays_entries_only(session, world, plans):
    """The audit trail has no index on who or when (adding one is a migration): its ids grow with
    time, so the count walks the primary key back from the newest entry to the day's start (less
    an hour for clock skew). With 50,000 older entries and 300 of today, it reads about today's."""
    w = world.actor("worker")
    since = day_start(utcnow(), "UTC")
    session.execute(text("""
        INSERT INTO audit_entries (at, actor_id, actor_name, action, entity_type, entity_id, warehouse_id, details)
        SELECT :old - (g || ' seconds')::interval, :user, 'Worker', 'unit.received', 'unit', g, :wh, '{}'
        FROM generate_series(50000, 1, -1) g"""), {"old": since - timedelta(hours=2), "user": w.id, "wh": world.wh.id})
    session.execute(text("""
        INSERT INTO audit_entries (at, actor_id, actor_name, action, entity_type, entity_id, warehouse_id, details)
        SELECT :now, CASE WHEN g % 3 = 0 THEN :user ELSE :other END, 'x',
               CASE WHEN g % 2 = 0 THEN 'unit.received' ELSE 'unit.inspected' END, 'unit', g, :wh, '{}'
        FROM generate_series(1, 300) g"""),
                    {"now": max(since, utcnow() - timedelta(minutes=1)), "user": w.id,
                     "other": world.users["worker2"].id, "wh": world.wh.id})
    session.commit()
    session.execute(text("ANALYZE audit_entries"))
    session.execute(text(f"SET plan_cache_mode = {plans}"))
    before = _rows_read(session, "audit_entries")
    for _ in range(7):  # psycopg prepares a statement on its sixth run
        figures = work_today(session, w, world.wh.id, since)
    read = (_rows_read(session, "audit_entries") - before) / 7
    assert figures == WorkToday(parcels=0, received=50, inspected=50, disposed=0)
    assert read <= 2 * 300 + 10, f"work_today read {read:.0f} audit entries for 300 of today's"
