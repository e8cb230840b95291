"""The delivery worker (`flask --app wsgi webhooks deliver`): a process apart from the web
servers, so that delivering never slows a scan. Several may run at once. Each round fans new
events out, claims what is due and sends it from a pool of threads over kept-alive connections,
outside any transaction, then records each answer."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import urllib3
from sqlalchemy.orm import Session

from app.webhooks.domain import SEND_TIMEOUT
from app.webhooks.services import Due, claim_due, fan_out, record_attempts

log = logging.getLogger("dockhand.webhooks")
TIMEOUT = urllib3.Timeout(connect=3.0, total=SEND_TIMEOUT)  # total: a trickling endpoint cannot hold a thread
MAX_ANSWER = 64 * 1024  # what is read of an endpoint's answer body


class Sender:
    """POSTs deliveries: one connection pool per worker, no redirects followed, no retries here
    (the schedule retries)."""

    def __init__(self, threads: int = 16) -> None:
        self.threads = threads
        self.http = urllib3.PoolManager(num_pools=50, maxsize=threads, timeout=TIMEOUT, retries=False)
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook")

    def send(self, due: Due) -> tuple[int | None, str | None]:
        from app.webhooks.domain import signed_headers
        from app.db import utcnow

        try:
            resp = self.http.request("POST", due.url, body=due.payload.encode(),
                                     headers=signed_headers(due.secrets, due.webhook_id, utcnow(), due.payload),
                                     redirect=False, preload_content=False)
            try:
                resp.read(MAX_ANSWER)
            finally:
                resp.release_conn()
            return resp.status, None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except Exception as exc:  # any network failure is an answer to record, never a crash
            return None, f"{exc.__class__.__name__}: {exc}"[:500]

    def close(self) -> None:
        self.pool.shutdown()
        self.http.clear()


def run_round(session_factory: Callable[[], Session], sender: Sender, *, batch: int | None = None) -> int:
    """One round: fan out, claim, send, record. Returns how much it did (events read from the
    feed and deliveries tried): 0 when there was nothing to do."""
    with session_factory() as session:
        read = fan_out(session)
        due = claim_due(session, limit=batch or sender.threads * 8)  # at most 8 sends per thread: 80 s at worst, inside the lease
    if not due:
        return read
    answers = list(sender.pool.map(sender.send, due))
    with session_factory() as session:
        record_attempts(session, [(d.id, status, error) for d, (status, error) in zip(due, answers)])
    return read + len(due)


def run(session_factory: Callable[[], Session], *, once: bool = False, idle_sleep: float = 0.5, threads: int = 16) -> None:
    """Deliver until stopped (or one pass with `once`: until nothing is due)."""
    sender = Sender(threads)
    try:
        while True:
            try:
                tried = run_round(session_factory, sender)
            except Exception:  # the database went away: log, wait, go on
                log.exception("webhook round failed")
                tried = 0
                if once:
                    raise
            if not tried:
                if once:
                    return
                time.sleep(idle_sleep)
    finally:
        sender.close()
