"""3. SSE fan-out: one publish to N open streams held by the C load client, on Beacon and on Flask-SSE
(gunicorn + gevent + redis): delivery times, memory per stream, and what is freed after."""
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import ClassVar

from ..common import HERE, LOOPBACK, BenchError, log, mono_ns
from ..network import free_port, http_get, wait_port
from ..options import Options
from ..processes import PROCS, descendants, mktemp, rss_kib
from ..redis_client import redis_query
from ..servers import Beacon, Publisher, beacon_cap_flag, make_site, start_redis
from ..sse_load import Delivery, Ready, build_load_client, run_load


@dataclass
class BeaconFanout:
    server: ClassVar[str] = "beacon"
    n: int
    browser: bool  # each stream sent Chromium's EventSource request headers
    ready: Ready
    result: Delivery
    rss0_kib: int  # before connecting
    rss1_kib: int  # with every stream ready
    kib_per_conn: float
    status_clients: int | None  # /__beacon/status clients with every stream ready
    publish_status: int
    publish_ms: float
    clients_left: int | None  # once the load client exited
    freed_s: float  # until /__beacon/status showed 0 clients (at most 15 s)
    rss_after_close_kib: int

    @property
    def held(self):
        return self.result.headers


@dataclass
class FlaskFanout:
    server: ClassVar[str] = "flask-sse"
    browser: ClassVar[bool] = False
    n: int
    ready: Ready
    result: Delivery
    rss0_kib: int  # gunicorn master + workers, before connecting
    rss1_kib: int  # with every stream subscribed
    kib_per_conn: float
    subscribed: int  # redis PUBSUB NUMSUB once all were in or the count was stable
    subscribe_s: float
    redis_receivers: int | None  # what PUBLISH answered
    workers: int

    @property
    def held(self):
        return self.subscribed


@dataclass
class FanoutFailure:
    server: str
    n: int
    error: str
    browser: bool = False


@dataclass
class FanoutResult:
    rows: list[BeaconFanout | FlaskFanout | FanoutFailure]

    def table_rows(self):
        rows = []
        for r in self.rows:
            if isinstance(r, FanoutFailure):
                rows.append(("fanout", f"{r.server} N={r.n:,}", "FAILED: " + r.error[:80]))
                continue
            res = r.result
            rows.append(("fanout", f"{r.server} N={r.n:,}" + (" browser request" if r.browser else ""),
                         f"held {r.held:,}  recv {res.received:,}  lost {res.lost:,}  "
                         f"p50 {res.p50_ms}  p99 {res.p99_ms}  100% {res.t100_ms} ms  "
                         f"{r.kib_per_conn:.1f} KiB/conn"))
        return rows

    def markdown(self):
        out = ["## 3. SSE fan-out: one publish to N open streams\n"]
        out.append("`benchmarks/sse_load.c` (epoll, gcc -O2) opens N streams from 127.0.0.2.. round-robin, waits until "
                   "all are ready, then one event carrying a CLOCK_MONOTONIC stamp is published; per stream it records "
                   "arrival − stamp. Beacon: ready = response headers received, publish = one "
                   "`POST /__beacon/publish {\"channel\":\"bench\",\"data\":\"<ns>\"}`. Flask-SSE sends no headers "
                   "before the first event, so there ready = TCP connected, then redis `PUBSUB NUMSUB` is polled "
                   "until every stream is subscribed or the count is stable for 3 s, and the event is one redis "
                   "`PUBLISH` of a Flask-SSE message (what `sse.publish` sends). Memory = (RSS after all ready − "
                   "RSS before) / streams held (Flask: gunicorn master + workers, redis not counted).\n")
        out.append("| server | N asked | held | received | lost | p50 ms | p99 ms | max ms | to 50% | to 99% | to 100% "
                   "| ready after | RSS before → after | KiB/conn | notes |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
        for r in self.rows:
            if isinstance(r, FanoutFailure):
                out.append(f"| {r.server} | {r.n:,} | failed: {r.error} |||||||||||||")
                continue
            res, rd = r.result, r.ready
            if isinstance(r, BeaconFanout):
                notes = (("browser's request headers (`--browser yes`, ~550 B); " if r.browser else "")
                         + f"status clients {r.status_clients}, publish {r.publish_status} in "
                         f"{r.publish_ms:.1f} ms; closed {res.closed}, failed {res.failed}; "
                         f"after the client exits: {r.clients_left} clients left after "
                         f"{r.freed_s:.2f} s, RSS {r.rss_after_close_kib / 1024:.1f} MiB")
                ready_after = f"{rd.elapsed_ms / 1000:.1f} s"
            else:
                notes = (f"{r.workers} worker(s), gevent worker_connections default; TCP connected {res.connected}, "
                         f"redis subscribers {r.held}, PUBLISH receivers {r.redis_receivers}; closed {res.closed}")
                ready_after = f"{rd.elapsed_ms / 1000 + (r.subscribe_s or 0):.1f} s"
            out.append(f"| {r.server} | {r.n:,} | {r.held:,} | {res.received:,} | {res.lost:,} | "
                       f"{res.p50_ms} | {res.p99_ms} | {res.max_ms} | {res.t50_ms} | "
                       f"{res.t99_ms} | {res.t100_ms} | {ready_after} | "
                       f"{r.rss0_kib / 1024:.1f} → {r.rss1_kib / 1024:.1f} MiB | {r.kib_per_conn:.1f} | {notes} |")
        b1 = [r for r in self.rows if isinstance(r, BeaconFanout) and r.n == 1000 and not r.browser]
        f1 = [r for r in self.rows if isinstance(r, FlaskFanout) and r.n == 1000]
        if b1 and f1:
            bt, ft = b1[0].result.t100_ms, f1[0].result.t100_ms
            out.append("")
            if isinstance(bt, (int, float)) and isinstance(ft, (int, float)) and bt > 0:
                out.append(f"- N = 1,000: publish → 100 % is {ft / bt:.1f}× faster on Beacon "
                           f"({bt:.2f} ms vs {ft:.2f} ms).")
            else:
                out.append(f"- N = 1,000: publish → 100 %: Beacon {bt} ms, Flask-SSE {ft} ms "
                           "(NA: not every held stream got the event).")
            if b1[0].kib_per_conn > 0:
                out.append(f"- Memory per stream: Beacon {b1[0].kib_per_conn:.1f} KiB, Flask-SSE "
                           f"{f1[0].kib_per_conn:.1f} KiB ({f1[0].kib_per_conn / b1[0].kib_per_conn:.1f}×).")
        out.append("")
        return out


def fanout_beacon(options, exe, n, browser=False):
    site = mktemp("beacon-bench-fan-")
    make_site(site)
    b = Beacon(options.beacon, site, beacon_cap_flag(options.beacon))
    try:
        b.status()
        time.sleep(1.0)
        rss0 = rss_kib(b.pid)
        rss1 = status_clients = publish_status = publish_ms = None

        def on_ready(ready):
            nonlocal rss1, status_clients, publish_status, publish_ms
            time.sleep(0.5)
            rss1 = rss_kib(b.pid)
            status_clients = b.status().get("clients")
            publisher = Publisher(b.port)
            try:
                publish_status, _, _, publish_ms = publisher.publish("bench")
            finally:
                publisher.close()

        ready, result = run_load(exe, b.port, "/__beacon/events?channel=bench", n, "headers", on_ready,
                                 connect_timeout=180, wait=60, linger=15, browser=browser)
        # sse_load has exited, so every stream is closed: is everything noticed and freed?
        t_close = time.monotonic()
        clients_left = None
        while time.monotonic() - t_close < 15:
            clients_left = b.status().get("clients")
            if clients_left == 0:
                break
            time.sleep(0.05)
        freed_s = time.monotonic() - t_close
        time.sleep(1.0)
        rss_after_close = rss_kib(b.pid)
    finally:
        b.stop()
    per_conn = (rss1 - rss0) / ready.headers if ready.headers else float("nan")
    return BeaconFanout(n=n, browser=browser, ready=ready, result=result, rss0_kib=rss0, rss1_kib=rss1,
                        kib_per_conn=per_conn, status_clients=status_clients, publish_status=publish_status,
                        publish_ms=publish_ms, clients_left=clients_left, freed_s=freed_s,
                        rss_after_close_kib=rss_after_close)


def numsub(port, channel):
    reply = redis_query(port, "PUBSUB", "NUMSUB", channel)
    return reply[-1] if reply else 0


def fanout_flask(exe, n, tmp):
    redis, rport = start_redis(tmp, ["--maxclients", "20000"])
    g = None
    try:
        gport = free_port()
        env = dict(os.environ, REDIS_URL=f"redis://{LOOPBACK}:{rport}/0")
        g = PROCS.start([sys.executable, "-m", "gunicorn", "-k", "gevent", "--bind", f"{LOOPBACK}:{gport}",
                         "--chdir", HERE, "--log-level", "warning", "flask_sse_app:app"], env=env,
                        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, f"gunicorn-{n}.log"), "w"))
        wait_port(gport, 30, g)
        http_get(gport, "/")
        time.sleep(1.0)

        def rss_all():
            return rss_kib(g.pid) + sum(rss_kib(c) for c in descendants(g.pid))

        rss0 = rss_all()
        workers = len(descendants(g.pid))
        subscribed = subscribe_s = rss1 = redis_receivers = None

        def on_ready(ready):
            nonlocal subscribed, subscribe_s, rss1, redis_receivers
            # Flask-SSE sends no headers before the first event: count redis subscribers instead,
            # until all are in or the count stops growing for 3 s (bounded at 60 s).
            t0 = time.monotonic()
            last, last_change = -1, t0
            while time.monotonic() - t0 < 60:
                cur = numsub(rport, "bench")
                if cur != last:
                    last, last_change = cur, time.monotonic()
                if cur >= n or time.monotonic() - last_change > 3:
                    break
                time.sleep(0.1)
            subscribed = last
            subscribe_s = last_change - t0
            rss1 = rss_all()
            msg = json.dumps({"data": str(mono_ns()), "type": "message"})  # Message.to_dict(), as sse.publish
            redis_receivers = redis_query(rport, "PUBLISH", "bench", msg)

        ready, result = run_load(exe, gport, "/stream?channel=bench", n, "connect", on_ready,
                                 connect_timeout=60, wait=30, linger=10)
    finally:
        if g is not None:
            PROCS.stop(g)
        PROCS.stop(redis)
    sub = subscribed or 0
    per_conn = (rss1 - rss0) / sub if sub else float("nan")
    return FlaskFanout(n=n, ready=ready, result=result, rss0_kib=rss0, rss1_kib=rss1, kib_per_conn=per_conn,
                       subscribed=sub, subscribe_s=subscribe_s, redis_receivers=redis_receivers, workers=workers)


def run(options: Options) -> FanoutResult:
    tmp = mktemp("beacon-bench-fanout-")
    exe = build_load_client(tmp)
    ns = options.fanout_n or ([1000] if options.quick else [1000, 10000, 19000])
    PROCS.record(shlex.join([options.beacon, "serve", "SITE", "--port", "0", "--quiet",
                             *beacon_cap_flag(options.beacon)]))
    PROCS.record("sse_load --port P -n N --path '/__beacon/events?channel=bench' --ready headers --src-count K "
                 "(127.0.0.2..127.0.0.K+1)   # then one POST /__beacon/publish "
                 "{\"channel\":\"bench\",\"data\":\"<CLOCK_MONOTONIC ns>\"}   "
                 "# N = 10,000 also with --browser yes (Chromium's request headers)")
    rows = []
    # Also once with the ~550-byte request a browser sends (--browser yes): memory per stream can
    # depend on the request's size (receive buffers).
    runs = [(n, False) for n in ns] + ([] if options.quick or options.fanout_n else [(10000, True)])
    for n, browser in runs:
        label = f"N={n:,}" + (" (browser request)" if browser else "")
        log(f"fan-out: beacon, {label}")
        try:
            r = fanout_beacon(options, exe, n, browser)
        except BenchError as e:
            log(f"fan-out beacon {label} failed: {e}")
            rows.append(FanoutFailure(server="beacon", n=n, error=str(e), browser=browser))
            continue
        rows.append(r)
        log(f"fan-out beacon {label}: {r.result}  RSS {r.rss0_kib:,} -> {r.rss1_kib:,} KiB "
            f"({r.kib_per_conn:.1f} KiB/conn)")
    flask_ns = [1000] if options.quick else [1000, 1500]
    PROCS.record(f"{sys.executable} -m gunicorn -k gevent --bind 127.0.0.1:P --chdir benchmarks flask_sse_app:app  "
                 "# REDIS_URL=redis://127.0.0.1:RP/0, gunicorn defaults (1 worker, 1000 worker_connections)")
    PROCS.record("redis-server --port RP --bind 127.0.0.1 --save '' --appendonly no --daemonize no")
    PROCS.record("sse_load --port P -n N --path '/stream?channel=bench' --ready connect   # then PUBSUB NUMSUB "
                 "bench until all in or stable 3 s, then PUBLISH bench {flask-sse message, data <ns>}")
    for n in flask_ns:
        if options.fanout_n and n not in options.fanout_n and n != 1000:
            continue
        log(f"fan-out: flask-sse, N={n:,}")
        try:
            r = fanout_flask(exe, n, tmp)
        except BenchError as e:
            log(f"fan-out flask N={n} failed: {e}")
            rows.append(FanoutFailure(server="flask-sse", n=n, error=str(e)))
            continue
        rows.append(r)
        log(f"fan-out flask N={n:,}: subscribed {r.subscribed}, {r.result}  RSS {r.rss0_kib:,} -> "
            f"{r.rss1_kib:,} KiB ({r.kib_per_conn:.1f} KiB/conn)")
    return FanoutResult(rows=rows)
