"""Scale-out through Redis Streams, shared by the redis and scale sections: N streams on each of several
Beacons on one Redis, stamped publishes through instance 0 timed on every stream, and (redis section)
the Redis commands each publish costs."""
import math
import os
import shlex
import subprocess
import time
from dataclasses import dataclass

from .common import LOOPBACK, BenchError, log
from .processes import PROCS, mktemp, rss_kib
from .redis_client import redis_query
from .servers import Beacon, Publisher, make_site, start_redis
from .sse_load import Delivery, Held, Ready, build_load_client, held_counts, read_dump, read_report, source_count
from .stats import fmt, pct


@dataclass
class CommandWindow:
    """Redis commands run over a window of time: all of them, and calls per command."""
    window_s: float
    total: int
    cmds: dict[str, int]


@dataclass
class PublishPhase:
    name: str
    k: int  # publishes
    codes: dict[int, int]  # HTTP status -> publishes answered with it
    publish_s: float  # from the first publish to the last answer
    window_s: float  # until every follower read the last
    caught_up: bool
    total: int  # Redis commands over the window
    cmds: dict[str, int]
    http_p50_ms: float
    http_p99_ms: float


@dataclass
class MergedRound:
    """One stamped publish's arrival over every stream of every instance."""
    round: int
    ready: int  # streams held
    received: int
    lost: int
    p50: float | None
    p99: float | None
    max: float | None
    t99: float | None  # until 99 % of the held streams had it
    t100: float | None
    publish_ms: float  # until the publish was answered
    per_instance_t100: list  # each load client's own time to 100 % (ms or "NA")


@dataclass
class ScaleOutRun:
    instances: int
    n_per: int  # streams asked per instance
    k: int  # publishes per command-count phase
    redis_version: str
    ready: list[Ready]  # per instance
    ready_s: float
    status_clients: list
    rss0_kib: list[int]  # per instance, before connecting
    rss1_kib: list[int]  # with every stream ready
    rounds: list[MergedRound]
    median_round: int | None  # by time to 100 %, rounds with losses last
    idle: CommandWindow | None  # commands with nothing published (with command counts only)
    phases: list[PublishPhase]
    drain_s: float
    held: list[Held]  # per instance, once the phases' events were counted
    held_expected: list[int]
    clients_left: list
    freed_s: float
    alive: list[bool]
    log_notes: list[str]  # what Beacon logged (it runs with --quiet)

    @property
    def ready_total(self):
        return sum(r.headers for r in self.ready)


def redis_stats(port):
    """(time.monotonic(), total_commands_processed, calls per command from INFO commandstats)."""
    text = redis_query(port, "INFO", "stats", "commandstats")  # several sections: Redis >= 7.0
    total, cmds = None, {}
    for line in text.splitlines():
        if line.startswith("total_commands_processed:"):
            total = int(line.split(":", 1)[1])
        elif line.startswith("cmdstat_"):
            name, _, rest = line.partition(":")
            fields = dict(kv.split("=", 1) for kv in rest.split(",") if "=" in kv)
            cmds[name[len("cmdstat_"):]] = int(fields.get("calls", 0))
    if total is None:
        raise BenchError("no total_commands_processed in INFO stats")
    return time.monotonic(), total, cmds


def redis_stats_delta(a, b):
    """What happened between two redis_stats() snapshots, less the first snapshot's own INFO (a command
    counts once it has run, so the second snapshot includes the first INFO but not itself)."""
    (t0, total0, cmds0), (t1, total1, cmds1) = a, b
    cmds = {k: cmds1.get(k, 0) - cmds0.get(k, 0) for k in set(cmds0) | set(cmds1)}
    cmds["info"] = cmds.get("info", 0) - 1
    return CommandWindow(window_s=t1 - t0, total=total1 - total0 - 1,
                         cmds={k: v for k, v in sorted(cmds.items()) if v})


def event_id_key(text):
    """'<ms>-<seq>' as a tuple that orders like Redis stream ids."""
    try:
        a, b = str(text).split("-", 1)
        return int(a), int(b)
    except ValueError:
        return -1, -1


def wait_followers(beacons, last_id, timeout=60.0):
    """Until every instance's /__beacon/status lastEventId has reached last_id (its follower read it)."""
    deadline = time.monotonic() + timeout
    want = event_id_key(last_id)
    while time.monotonic() < deadline:
        if all(event_id_key(b.status().get("lastEventId")) >= want for b in beacons):
            return True
        time.sleep(0.05)
    return False


def merged_round(dumps, k, ready_total, publish_ms, per_instance):
    """Publish -> arrival over every stream of every instance for round k (1-based), from the --dump files;
    per_instance is each load client's Delivery of that round."""
    lat = sorted(v / 1e6 for d in dumps for v in d.get(k, []))
    n = len(lat)

    def at(rank):  # rank is 1-based; None if that many never arrived
        return lat[rank - 1] if 1 <= rank <= n else None

    return MergedRound(round=k, ready=ready_total, received=n, lost=max(0, ready_total - n),
                       p50=pct(lat, 50) if lat else None, p99=pct(lat, 99) if lat else None,
                       max=lat[-1] if lat else None, t99=at(math.ceil(0.99 * ready_total)),
                       t100=at(ready_total) if ready_total else None, publish_ms=publish_ms,
                       per_instance_t100=[x.t100_ms for x in per_instance])


def publish_phase(pub, beacons, rport, name, k, spacing, tag):
    """k publishes through one instance, one after the other (each waits for its 202), start-to-start at
    least `spacing` s apart; Redis commands counted from before the first until every follower read the last."""
    s0 = redis_stats(rport)
    t0 = time.monotonic()
    codes, ms, last_id = {}, [], None
    for i in range(k):
        t_i = time.monotonic()
        status, ident, _, dt = pub.publish("bench", "load", f"{tag}{i}")
        codes[status] = codes.get(status, 0) + 1
        ms.append(dt)
        if status == 202 and ident:
            last_id = ident
        if spacing:
            time.sleep(max(0.0, spacing - (time.monotonic() - t_i)))
    t_pub = time.monotonic() - t0
    caught_up = wait_followers(beacons, last_id) if last_id else False
    d = redis_stats_delta(s0, redis_stats(rport))
    ms.sort()
    return PublishPhase(name=name, k=k, codes=codes, publish_s=t_pub, window_s=d.window_s, caught_up=caught_up,
                        total=d.total, cmds=d.cmds, http_p50_ms=pct(ms, 50), http_p99_ms=pct(ms, 99))


def scale_out(beacon, quick, instances, n_per, measure_commands=True):
    """n_per streams on each of `instances` Beacons sharing one Redis; stamped publishes through
    instance 0, timed on every stream; then, with measure_commands, Redis commands per publish."""
    rounds = 3 if quick else 5
    k_pub = 50 if quick else 200
    spacing = 0.05
    idle_s = 5.5 if quick else 11.0
    connect_timeout, wait, linger, hold = 180, 120, 15, 900
    tmp = mktemp("beacon-bench-redis-")
    exe = build_load_client(tmp)
    _, rport = start_redis(tmp)  # stopped with everything else at the section's end
    url = f"redis://{LOOPBACK}:{rport}"
    prefix = "beaconbench:"
    cap = str(max(100000, 2 * n_per))
    site = mktemp("beacon-bench-redis-site-")
    make_site(site)
    logdir = mktemp("beacon-bench-redis-log-")
    PROCS.record(shlex.join([beacon, "serve", "SITE", "--port", "0", "--quiet", "--redis", "redis://127.0.0.1:RP",
                             "--redis-prefix", prefix, "--max-connections", cap])
                 + f"   # x{instances}, the same URL and prefix")
    beacons = [Beacon(beacon, site, ["--redis", url, "--redis-prefix", prefix, "--max-connections", cap],
                      logdir=logdir) for _ in range(instances)]
    for b in beacons:
        b.status()
    time.sleep(1.0)
    rss0 = [rss_kib(b.pid) for b in beacons]
    redis_version = (redis_query(rport, "INFO", "server") or "").split("redis_version:")[-1].split()[0]

    # One sse_load per instance (each process holds at most 20k open files), all started at once.
    src_count = source_count(n_per)
    loads, dumps = [], []
    PROCS.record(f"sse_load --port P_i -n {n_per} --path '/__beacon/events?channel=bench' --ready headers "
                 f"--src-first 2+10i --src-count {src_count} --connect-timeout {connect_timeout} --wait {wait} "
                 f"--linger {linger} --rounds {rounds} --dump FILE_i --hold {hold}   # one per instance, in parallel")
    for i, b in enumerate(beacons):
        dump = os.path.join(tmp, f"lat-{i}.txt")
        dumps.append(dump)
        cmd = [exe, "--port", b.port, "-n", n_per, "--path", "/__beacon/events?channel=bench", "--ready", "headers",
               "--src-first", 2 + 10 * i, "--src-count", src_count, "--connect-timeout", connect_timeout,
               "--wait", wait, "--linger", linger, "--rounds", rounds, "--dump", dump, "--hold", hold]
        loads.append(PROCS.start(cmd, record=False, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=open(os.path.join(tmp, f"sse_load-{i}.log"), "w")))
    pub = Publisher(beacons[0].port)
    try:
        t_conn = time.monotonic()
        ready = [read_report(p, Ready, connect_timeout + 30, "sse_load's READY line") for p in loads]
        ready_s = time.monotonic() - t_conn
        ready_total = sum(r.headers for r in ready)
        log(f"redis: {ready_total:,} of {n_per * instances:,} streams ready after {ready_s:.1f} s: {ready}")
        time.sleep(1.0)
        status_clients = [b.status().get("clients") for b in beacons]
        rss1 = [rss_kib(b.pid) for b in beacons]

        # 1. Rounds: one stamped publish through instance 0, timed on every stream of every instance.
        pubs = []  # (ms until answered, each instance's Delivery)
        for r in range(rounds):
            time.sleep(1.0)
            status, ident, stamp, ms = pub.publish("bench", "stamp", fresh=True)
            if status != 202:
                raise BenchError(f"publish answered {status}")
            res = [read_report(p, Delivery, wait + linger + 30, "sse_load's RESULT line") for p in loads]
            pubs.append((ms, res))
            log(f"redis round {r + 1}/{rounds}: publish {status} {ident} in {ms:.1f} ms; per instance t100 "
                f"{[x.t100_ms for x in res]} ms, lost {[x.lost for x in res]}")

        # 2. Redis commands per publish, with every stream still open and reading.
        idle, phases = None, []
        if measure_commands:
            time.sleep(1.0)
            s0 = redis_stats(rport)
            time.sleep(idle_s)
            idle = redis_stats_delta(s0, redis_stats(rport))
            log(f"redis idle {idle.window_s:.1f} s: {idle.total} commands {idle.cmds}")
            for name, sp, tag in (("back-to-back", 0.0, "b"), (f"paced {spacing * 1000:.0f} ms", spacing, "p")):
                ph = publish_phase(pub, beacons, rport, name, k_pub, sp, tag)
                phases.append(ph)
                log(f"redis {name}: {k_pub} publishes in {ph.publish_s:.2f} s (HTTP {ph.codes}, p50 "
                    f"{ph.http_p50_ms:.1f} ms), followers caught up {ph.caught_up}; {ph.total} commands in "
                    f"{ph.window_s:.2f} s: {ph.cmds}")
        pub.close()

        # Every stream should get every one of those events: count them (bounded: stops when no
        # stream makes progress for 10 s, at most 300 s).
        expect = [r.headers * k_pub * len(phases) for r in ready]
        t_drain, last, last_change = time.monotonic(), None, time.monotonic()
        while True:
            got = [h.events for h in held_counts(loads)]
            if got != last:
                last, last_change = got, time.monotonic()
            if all(g >= e for g, e in zip(got, expect)) or time.monotonic() - last_change > 10 \
                    or time.monotonic() - t_drain > 300:
                break
            time.sleep(0.5)
        drain_s = time.monotonic() - t_drain
        for p in loads:
            p.stdin.close()
        final = [read_report(p, Held, 60, "sse_load's final HELD line") for p in loads]
        for p in loads:
            p.wait(30)
        # Every stream is closed now: does every instance notice?
        t_close = time.monotonic()
        left = None
        while time.monotonic() - t_close < 20:
            left = [b.status().get("clients") for b in beacons]
            if all(c == 0 for c in left):
                break
            time.sleep(0.1)
        freed_s = time.monotonic() - t_close
        alive = [b.proc.poll() is None for b in beacons]
    finally:
        pub.close()
        for p in loads:
            PROCS.stop(p)
        for b in beacons:
            b.stop()
    # Merge the load clients' raw latencies per round.
    parsed = [read_dump(d) for d in dumps]
    rows = [merged_round(parsed, r, ready_total, ms, per_instance) for r, (ms, per_instance) in enumerate(pubs, 1)]
    order = sorted(rows, key=lambda m: (m.lost > 0, m.t100 if m.t100 is not None else m.max or 0))
    median_round = order[len(order) // 2].round if order else None
    # Beacon's own complaints, if any (it runs with --quiet: warnings and errors only).
    notes = []
    for i, b in enumerate(beacons):
        try:
            with open(b.logpath, errors="replace") as f:
                lines = [line.rstrip() for line in f if line.strip()]
        except OSError:
            lines = []
        if lines:
            notes.append(f"instance {i}: {len(lines)} log line(s), e.g. {lines[0][:300]!r}")
    if rows:
        mr = rows[median_round - 1]
        log(f"redis median round {mr.round}: {mr.received:,}/{ready_total:,} received, lost {mr.lost}, "
            f"p50 {fmt(mr.p50, 3)} p99 {fmt(mr.p99, 3)} 100% {fmt(mr.t100, 3)} ms")
    for n in notes:
        log(f"redis: beacon log: {n}")
    return ScaleOutRun(instances=instances, n_per=n_per, k=k_pub, redis_version=redis_version, ready=ready,
                       ready_s=ready_s, status_clients=status_clients, rss0_kib=rss0, rss1_kib=rss1, rounds=rows,
                       median_round=median_round, idle=idle, phases=phases, drain_s=drain_s, held=final,
                       held_expected=expect, clients_left=left, freed_s=freed_s, alive=alive, log_notes=notes)
