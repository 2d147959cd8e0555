"""7. Redis scale-out: three instances sharing events through Redis Streams, delivery over every stream
and the Redis commands each publish costs."""
from dataclasses import dataclass

from ..options import Options
from ..scale_out import ScaleOutRun, scale_out
from ..stats import fmt

INSTANCES = 3  # default; --redis-instances changes it
# What Beacon's publish script (RedisEventBackend.appendScript) runs inside EVAL: counted by Redis
# (commandstats and total_commands_processed) but no round trips. XRANGE is also what a Last-Event-ID
# replay sends; no client here sends Last-Event-ID, so every XRANGE in this section is the script's.
SCRIPT_COMMANDS = ("xadd", "xlen", "xrange", "xdel", "get", "set")


@dataclass
class RedisResult:
    run: ScaleOutRun

    def table_rows(self):
        X = self.run
        rows = []
        for m in X.rounds:
            rows.append(("redis", f"round {m.round}{' (median)' if m.round == X.median_round else ''}, "
                         f"{m.ready:,} streams on {X.instances} instances",
                         f"recv {m.received:,}  lost {m.lost:,}  p50 {fmt(m.p50, 3)}  p99 {fmt(m.p99, 3)}  "
                         f"100% {fmt(m.t100, 3)} ms"))
        for ph in X.phases:
            inner = sum(ph.cmds.get(x, 0) for x in SCRIPT_COMMANDS)
            rows.append(("redis", f"Redis commands per publish, {ph.name}",
                         f"{ph.total / ph.k:.2f} commands, {(ph.total - inner) / ph.k:.2f} round trips; "
                         + ", ".join(f"{n} {v / ph.k:.2f}" for n, v in ph.cmds.items())))
        return rows

    def markdown(self):
        X = self.run
        ready_total = X.ready_total
        out = [f"## 7. Redis scale-out: {X.instances} instances sharing one Redis\n"]
        out.append(f"redis-server {X.redis_version} (`--save '' --appendonly no`, its own temporary folder) and "
                   f"{X.instances} `beacon serve SITE --redis redis://127.0.0.1:RP --redis-prefix beaconbench: "
                   "--max-connections …` on free ports; one `sse_load` process per instance (each process may hold "
                   f"20,000 open files, so one client cannot hold all of them) opens {X.n_per:,} streams on "
                   "`GET /__beacon/events?channel=bench` of its instance, all at once. Once every stream has "
                   "its headers, each round is one `POST /__beacon/publish {\"channel\":\"bench\",\"data\":\"<ns>\"}` "
                   "to instance 0 only, on a fresh connection, stamped with CLOCK_MONOTONIC right before the request; "
                   "the event goes publish → Redis (one EVAL) → each instance's follower (XREAD) → its streams. The "
                   "clients' raw per-stream latencies are merged: p50/p99/max over the streams that got the "
                   "event, \"to 100 %\" = when the last of all the streams held had it (n/a if any lost it). A round "
                   "ends when every stream has it or 15 s after its first arrival; rounds are ≥1 s apart.\n")
        out.append("| round | streams held | received | lost | p50 ms | p99 ms | max ms | to 99 % | to 100 % | "
                   "to 100 % per instance (0 = publisher) | publish 202 ms |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        for m in X.rounds:
            med = " (median)" if m.round == X.median_round else ""
            per = " / ".join(str(v) for v in m.per_instance_t100)
            out.append(f"| {m.round}{med} | {m.ready:,} | {m.received:,} | {m.lost:,} | {fmt(m.p50, 3)} | "
                       f"{fmt(m.p99, 3)} | {fmt(m.max, 3)} | {fmt(m.t99, 3)} | {fmt(m.t100, 3)} | {per} | "
                       f"{m.publish_ms:.1f} |")
        out.append("")
        if X.rounds:
            mr = X.rounds[X.median_round - 1]
            t100s = [m.t100 for m in X.rounds if m.t100 is not None]
            out.append(f"- Median round (by time to 100 %, rounds with losses last): round {mr.round}: publish → "
                       f"delivered on all {mr.ready:,} streams p50 {fmt(mr.p50, 3)} ms, p99 {fmt(mr.p99, 3)} ms, "
                       f"100 % {fmt(mr.t100, 3)} ms, lost {mr.lost:,}"
                       + (f"; to 100 % ranged {min(t100s):.1f}–{max(t100s):.1f} ms over {len(X.rounds)} rounds."
                          if t100s else "."))
        rd = X.ready
        kib = [(b - a) / r.headers if r.headers else float("nan")
               for a, b, r in zip(X.rss0_kib, X.rss1_kib, rd)]
        out.append(f"- Streams ready ({ready_total:,} of {X.n_per * X.instances:,}, failed "
                   f"{sum(r.failed for r in rd):,}) after {X.ready_s:.1f} s; `/__beacon/status` clients "
                   f"per instance {X.status_clients}; RSS per instance "
                   + ", ".join(f"{a / 1024:.0f} → {b / 1024:.0f} MiB" for a, b in zip(X.rss0_kib, X.rss1_kib))
                   + " (" + ", ".join(f"{v:.1f}" for v in kib) + " KiB per stream).")
        out.append(f"- After the load clients exited: clients per instance {X.clients_left} after "
                   f"{X.freed_s:.2f} s; instances still running at the end: {X.alive}.")
        out.append("")
        idle = X.idle
        rate = idle.total / idle.window_s if idle.window_s else 0.0
        out.append(f"**Redis commands per publish.** With all {ready_total:,} streams still open and reading, "
                   "`INFO stats commandstats` is read before and after each phase (the phase ends once every "
                   "instance's `/__beacon/status` `lastEventId` has reached the last publish, i.e. every follower "
                   "has read it); the INFO reads themselves are taken out. Both `total_commands_processed` and "
                   "`commandstats` also count the commands the publish script runs inside EVAL (XADD to the feed and "
                   "to the channel's history, XLEN of both, XRANGE + XDEL once a stream is over its cap), which are "
                   "no round trips: \"round trips\" below is the commands Δ less those (what the instances sent "
                   "over the network; XRANGE counts as the script's, since no client here sends Last-Event-ID, "
                   "the only other reason Beacon sends one). Every "
                   "instance follows the feed with `XREAD COUNT 1000 BLOCK 5000`, the publishing instance too (it "
                   "delivers its own publishes through the feed), so one publish costs 1 EVAL plus one XREAD per "
                   "instance whose follower reads it on its own; when events come faster than a follower's "
                   "round trip, one XREAD returns several and the XREADs per publish drop. An idle follower still "
                   f"returns from its blocking XREAD every 5 s: measured over {idle.window_s:.1f} s with nothing "
                   f"published, {idle.total} commands ({rate:.2f}/s: {idle.cmds or '{}'}); the \"less idle\" "
                   "column subtracts that rate over the phase's window.\n")
        out.append("| phase | publishes | HTTP 202 p50 / p99 ms | publishing took s | window s | commands Δ | "
                   "commands / publish | round trips / publish | round trips / publish less idle | EVAL / publish | "
                   "XREAD / publish | inside EVAL / publish | other |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for ph in X.phases:
            k = ph.k
            c = dict(ph.cmds)
            ev = c.pop("eval", 0) + c.pop("evalsha", 0)
            xr = c.pop("xread", 0)
            inner = {x: c.pop(x) for x in SCRIPT_COMMANDS if x in c}
            other = ", ".join(f"{n} {v}" for n, v in c.items()) or "—"
            inside = ", ".join(f"{n} {v / k:.2f}" for n, v in inner.items()) or "—"
            inner = sum(inner.values())
            trips = ph.total - inner
            less = (trips - rate * ph.window_s) / k
            codes = ", ".join(f"{n}×{code}" for code, n in ph.codes.items())
            out.append(f"| {ph.name} | {k} ({codes}) | {ph.http_p50_ms:.1f} / {ph.http_p99_ms:.1f} | "
                       f"{ph.publish_s:.2f} | {ph.window_s:.2f} | {ph.total:,} | {ph.total / k:.2f} | "
                       f"{trips / k:.2f} | {less:.2f} | {ev / k:.2f} | {xr / k:.2f} | {inner / k:.2f} ({inside}) | {other} |")
        out.append("")
        out.append("- Each publish waits for its 202 before the next is sent, so the pace is set by how fast the "
                   "publishing instance answers while it (and the machine) delivers the earlier events: mean "
                   "start-to-start " + ", ".join(f"{ph.name} {ph.publish_s / ph.k * 1000:.0f} ms"
                                                 for ph in X.phases) + ".")
        held, exp = X.held, X.held_expected
        out.append("- Delivery during those phases: events received per instance's client "
                   + ", ".join(f"{h.events:,} of {e:,}" for h, e in zip(held, exp))
                   + f" (streams × {X.k} × {len(X.phases)}); streams closed by the server "
                   f"{[h.closed for h in held]}; late stamped events {[h.late for h in held]}; "
                   f"all counted within {X.drain_s:.1f} s after the second phase ended.")
        out.append("- Beacon log (run with `--quiet`): " + ("; ".join(X.log_notes) if X.log_notes
                                                             else "nothing logged by any instance.") + "\n")
        return out


def run(options: Options) -> RedisResult:
    return RedisResult(scale_out(options.beacon, options.quick, options.redis_instances or INSTANCES,
                                 options.redis_n or (300 if options.quick else 10000)))
