"""gunicorn's settings for Dockhand: `make run`, and production (docs/deploy.md).

Threaded workers (gthread): a request that arrives slowly (a photo over a weak mobile link) holds
one thread while it trickles in, not a whole process, so scans and /health are answered meanwhile
(bench/serving.py measures it). Each thread has its own database session (app.db's scoped
session); SQLAlchemy's pool (5 + 10 per process) covers the threads.
"""
import os

bind = os.environ.get("DOCKHAND_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("DOCKHAND_WORKERS", 2))
threads = int(os.environ.get("DOCKHAND_THREADS", 8))
keepalive = 5  # seconds a handheld's connection stays open between scans
timeout = 30  # a worker silent this long is restarted
graceful_timeout = 30  # on SIGTERM, requests under way get this long to finish
control_socket_disable = True  # no control socket under $HOME
# Only a proxy on these addresses may say the request came over HTTPS (X-Forwarded-Proto).
forwarded_allow_ips = os.environ.get("DOCKHAND_TRUSTED_PROXIES", "127.0.0.1,::1")
accesslog = None  # the app logs each request itself, as JSON with its request id (app/observability.py)

# Metrics: each worker writes its figures under this folder and /metrics sums them
# (prometheus_client's multiprocess mode); the folder is emptied when gunicorn starts.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"dockhand-metrics-{os.getpid()}"))

# gunicorn's own lines (start, worker restarts) as JSON too, like the app's (app/observability.py).
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "pythonjsonlogger.json.JsonFormatter",
                            "fmt": "%(levelname)s %(name)s %(message)s", "timestamp": "time",
                            "rename_fields": {"levelname": "level", "name": "logger"}}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": []},  # the app adds its own (app/observability.py)
    "loggers": {"gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
                "gunicorn.access": {"handlers": [], "level": "INFO", "propagate": False}},
}


def on_starting(server):  # type: ignore[no-untyped-def]
    """Start the metrics folder empty: figures of an earlier run's workers are not summed in."""
    import shutil

    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, mode=0o700)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """A worker that ended no longer counts in the live gauges (connections in use)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
