"""Connections that outlast a database restart: a refused connection is tried again after a
short, bounded backoff, and a failure to reach the database is told apart from a statement the
database refused (the first answers 503 with Retry-After, app.web)."""
from __future__ import annotations

import time

from sqlalchemy import exc as sa_exc

# A connection PostgreSQL refused (a restart, a failover) is tried again after these pauses
# before the request gives up with a 503: about 5 s in all.
CONNECT_BACKOFF = (0.1, 0.2, 0.4, 0.8, 1.5, 2.0)


def connect_with_backoff(dialect, _record, cargs, cparams):  # type: ignore[no-untyped-def]
    """SQLAlchemy's do_connect hook: open a DBAPI connection, retrying a refused one."""
    for pause in CONNECT_BACKOFF:
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError:
            time.sleep(pause)
    return dialect.connect(*cargs, **cparams)


def database_unavailable(exc: BaseException) -> bool:
    """True for a failure to reach the database (refused, dropped, pool exhausted), as opposed
    to a statement the database refused: the request may succeed when sent again."""
    if isinstance(exc, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError))
    return False
