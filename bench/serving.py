"""Serving benchmark: what a handheld downloads, and whether slow uploads block anyone. A/B in one run.

    .venv/bin/python bench/serving.py                                  # this checkout
    .venv/bin/python bench/serving.py --checkout /work/base --checkout . --rounds 2

Each checkout is served the way its own `make run` serves it: `gunicorn -c gunicorn.conf.py` when
the checkout has that file, otherwise `gunicorn -w 2` (sync workers), on a copy of one seeded
PostgreSQL database (bench/seed.py, small). Checkouts alternate, round after round, so both meet
the same machine. Per run:

1. **Uploads against scans**: four signed-in workers each send a phone-size photo (3 MB JPEG) to a
   unit at 150 KB/s, as over a weak mobile link; meanwhile a fifth worker scans parcels as fast as
   it is answered and a prober asks /health every 100 ms. Reported: scan p95 and max, /health max,
   each over the window while all four uploads are still arriving. Aims: scan p95 < 25 ms, /health
   < 100 ms.
2. **First load in Chromium** (the checkout's static files built as its Makefile builds them): sign
   in and open the scan screen in a fresh browser: bytes on the wire (headers included, from the
   DevTools protocol); then the scan screen again in a new tab: requests that reached the network;
   then one parcel scan and one item scan: the item scan's answer on the wire. Aims: 30 KB, 1
   request, 2 KB.

Writes bench/out/serving.json (or --out) and prints a table.
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.client import Client, key, receive_parcels  # noqa: E402
from bench.run import free_port, pct, start_postgres, start_server, stop_server  # noqa: E402
from bench.seed import libpq_url, seed  # noqa: E402

UPLOADERS = 4
UPLOAD_RATE = 150 * 1024  # bytes per second per upload
WINDOW = 10.0  # seconds measured while every upload is still arriving
AIMS = {"scan_p95_ms": 25.0, "health_max_ms": 100.0, "first_load_kb": 30.0, "repeat_requests": 1, "scan_answer_bytes": 2048}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def phone_photo() -> bytes:
    """A 4032x3024 JPEG of noise: about what a phone sends, and as hard to compress."""
    from PIL import Image

    rng = random.Random(7)
    small = Image.frombytes("RGB", (504, 378), bytes(rng.getrandbits(8) for _ in range(504 * 378 * 3)))
    out = io.BytesIO()
    small.resize((4032, 3024)).save(out, "JPEG", quality=92)
    return out.getvalue()


class Server:
    """A checkout's gunicorn, started as its `make run` starts it, on a free port."""

    def __init__(self, checkout: Path, database_url: str, log: Path) -> None:
        self.port = free_port()
        python = checkout / ".venv" / "bin" / "python"
        own_config = (checkout / "gunicorn.conf.py").exists()
        settings = ["-c", "gunicorn.conf.py"] if own_config else ["--no-control-socket", "-w", "2"]
        cmd = [str(python), "-m", "gunicorn", *settings, "-b", f"127.0.0.1:{self.port}", "wsgi:app"]
        self.settings = " ".join(settings)
        env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY=secrets.token_hex(32),
                   DOCKHAND_PHOTO_DIR=tempfile.mkdtemp(prefix="dockhand-serving-photos-"))
        if (checkout / "static" / "cache_manifest.json").exists() or "assets:" in (checkout / "Makefile").read_text():
            subprocess.run([str(checkout / ".venv" / "bin" / "flask"), "--app", "wsgi", "digest", "compile"], cwd=checkout,
                           env=env, check=True, capture_output=True)
        self.proc = start_server(cmd, checkout, env, log, self.port, "/health")

    def stop(self) -> None:
        stop_server(self.proc)


def slow_upload(port: int, client: Client, unit_id: int, photo: bytes, out: dict[str, Any]) -> None:
    """POST one photo as the handheld's form does, trickling the body at UPLOAD_RATE."""
    boundary = secrets.token_hex(12)
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{client.csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{key()}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"photo.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    body = head + photo + f"\r\n--{boundary}--\r\n".encode()
    cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    request = (f"POST /receive/units/{unit_id}/photos HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookies}\r\n"
               f"HX-Request: true\r\nX-CSRFToken: {client.csrf}\r\nConnection: close\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(request)
        chunk = UPLOAD_RATE // 10
        for i in range(0, len(body), chunk):
            sock.sendall(body[i:i + chunk])
            time.sleep(0.1)
        reply = sock.recv(64).decode("latin-1")
    out["status"] = reply.split(" ")[1] if reply.startswith("HTTP/") else reply[:40]
    out["seconds"] = round(time.perf_counter() - t0, 1)


def uploads_against_scans(port: int, world: Any, photo: bytes) -> dict[str, Any]:
    uploaders = []
    for i in range(UPLOADERS):
        c = Client("127.0.0.1", port)
        c.login(world.users[i], world.password)
        uploaders.append(c)
    scanner = Client("127.0.0.1", port)
    scanner.login(world.users[UPLOADERS], world.password)
    outcomes: list[dict[str, Any]] = [{} for _ in range(UPLOADERS)]
    threads = [threading.Thread(target=slow_upload, args=(port, c, world.confirm_units[i][0], photo, outcomes[i]))
               for i, c in enumerate(uploaders)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # every upload has begun arriving
    window_end = time.time() + WINDOW
    health: list[float] = []

    def probe() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.time() < window_end:
            t0 = time.perf_counter()
            try:
                conn.request("GET", "/health")
                conn.getresponse().read()
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            health.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.1)

    prober = threading.Thread(target=probe)
    prober.start()
    scans = receive_parcels(scanner, world.parcels[UPLOADERS], window_end)
    prober.join()
    for t in threads:
        t.join()
    latencies = sorted(r[2] for r in scanner.records)
    return {"scans": scans, "scan_p50_ms": round(pct(latencies, 50), 1), "scan_p95_ms": round(pct(latencies, 95), 1),
            "scan_max_ms": round(latencies[-1], 1), "health_probes": len(health),
            "health_max_ms": round(max(health), 1), "health_median_ms": round(statistics.median(health), 1),
            "uploads": outcomes, "errors": scanner.errors[:3]}


def first_load(port: int, world: Any) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{port}"
    user = world.users[UPLOADERS + 1]
    parcel = world.parcels[UPLOADERS + 1][0]
    home = tempfile.mkdtemp(prefix="dockhand-serving-chromium-")
    os.environ.setdefault("XDG_CONFIG_HOME", home)
    os.environ.setdefault("XDG_CACHE_HOME", home)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 393, "height": 851}, is_mobile=True, has_touch=True)

        def watched(page):  # type: ignore[no-untyped-def]
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            seen: dict[str, Any] = {"bytes": 0, "network": 0, "cached": set(), "by_url": {}, "urls": {}}
            cdp.on("Network.requestServedFromCache", lambda e: seen["cached"].add(e["requestId"]))
            cdp.on("Network.responseReceived", lambda e: seen["urls"].__setitem__(e["requestId"], e["response"]))

            def finished(e: dict[str, Any]) -> None:
                response = seen["urls"].get(e["requestId"], {})
                if e["requestId"] in seen["cached"] or response.get("fromDiskCache") or response.get("fromMemoryCache"):
                    return
                seen["bytes"] += e["encodedDataLength"]
                seen["network"] += 1
                seen["by_url"][response.get("url", "?").replace(base, "")] = e["encodedDataLength"]
            cdp.on("Network.loadingFinished", finished)

            def redirected(e: dict[str, Any]) -> None:  # a redirect's answer has no loadingFinished of its own
                if e.get("redirectResponse"):
                    seen["bytes"] += e["redirectResponse"].get("encodedDataLength", 0)
                    seen["network"] += 1
                    seen["by_url"][e["redirectResponse"]["url"].replace(base, "") + " (redirect)"] = \
                        e["redirectResponse"].get("encodedDataLength", 0)
            cdp.on("Network.requestWillBeSent", redirected)
            return seen

        page = context.new_page()
        seen = watched(page)
        page.goto(f"{base}/login")
        page.fill("#username", user)
        page.fill("#password", world.password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        if not page.url.endswith("/receive"):  # a worker lands on the scan screen; otherwise open it
            page.goto(f"{base}/receive")
        page.wait_for_selector("#scan")
        page.wait_for_load_state("networkidle")
        first = {"bytes": seen["bytes"], "requests": seen["network"], "by_url": dict(seen["by_url"])}

        again = context.new_page()
        seen2 = watched(again)
        again.goto(f"{base}/receive")
        again.wait_for_selector("#scan")
        again.wait_for_load_state("networkidle")
        repeat = {"requests": seen2["network"], "urls": list(seen2["by_url"])}

        again.fill("#scan", parcel.number)
        again.press("#scan", "Enter")
        again.wait_for_selector("#parcel")
        again.wait_for_load_state("networkidle")
        with again.expect_response(lambda r: r.url.endswith("/receive/scan")):
            again.fill("#scan", parcel.items[0])
            again.press("#scan", "Enter")
        again.wait_for_load_state("networkidle")
        scan_bytes = seen2["by_url"]["/receive/scan"]  # the item scan's, which came after the parcel's
        context.close()
        browser.close()
    return {"first_load_bytes": first["bytes"], "first_load_kb": round(first["bytes"] / 1024, 1),
            "first_load_requests": first["requests"], "first_load_by_url": first["by_url"],
            "repeat_requests": repeat["requests"], "repeat_urls": repeat["urls"], "scan_answer_bytes": scan_bytes}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkout", action="append", type=Path, help="a checkout to serve (repeat for A/B); default: this one")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "serving.json")
    args = p.parse_args(argv)
    checkouts = [c.resolve() for c in (args.checkout or [ROOT])]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    photo = phone_photo()
    print(f"photo {len(photo) / 2**20:.1f} MB at {UPLOAD_RATE // 1024} KB/s: {len(photo) / UPLOAD_RATE:.0f} s per upload")
    server = start_postgres()
    results: list[dict[str, Any]] = []
    try:
        from app.migrate import upgrade

        upgrade(server.url)
        world = seed(server.url, units=2000, ledger=4000, clients=UPLOADERS + 2, parcels_per_client=150,
                     confirm_per_client=5, products=400, verbose=False)
        import psycopg

        admin = psycopg.connect(libpq_url(server.url).rsplit("/", 1)[0] + "/postgres", autocommit=True)
        template = libpq_url(server.url).rsplit("/", 1)[1]
        admin.execute(f'ALTER DATABASE "{template}" WITH ALLOW_CONNECTIONS false')
        run = 0
        for rnd in range(args.rounds):
            for checkout in checkouts:
                run += 1
                name = f"serving_{run}"
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                url = server.url.rsplit("/", 1)[0] + "/" + name
                app = Server(checkout, url, args.out.parent / f"serving-gunicorn-{run}.log")
                try:
                    row: dict[str, Any] = {"checkout": str(checkout), "round": rnd + 1, "gunicorn": app.settings,
                                           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=checkout,
                                                                    capture_output=True, text=True).stdout.strip()}
                    row.update(uploads_against_scans(app.port, world, photo))
                    row.update(first_load(app.port, world))
                finally:
                    app.stop()
                results.append(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("first_load_by_url", "uploads")}), flush=True)
    finally:
        server.stop()
    args.out.write_text(json.dumps({"aims": AIMS, "runs": results}, indent=2))
    print(f"\n{'commit':<10} {'gunicorn':<34} {'scan p95':>9} {'scan max':>9} {'health max':>11} "
          f"{'1st load':>9} {'repeat':>7} {'scan B':>7}")
    for r in results:
        print(f"{r['commit']:<10} {r['gunicorn']:<34} {r['scan_p95_ms']:>7.1f}ms {r['scan_max_ms']:>7.0f}ms "
              f"{r['health_max_ms']:>9.0f}ms {r['first_load_kb']:>7.1f}KB {r['repeat_requests']:>7} {r['scan_answer_bytes']:>7}")
    print(f"aims: {AIMS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
