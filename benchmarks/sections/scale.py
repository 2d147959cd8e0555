"""7b. Past one process: 51,000 and 102,000 streams held by several instances on one Redis (the machine
caps open files at 20,000 per process), delivery only."""
import statistics
from dataclasses import dataclass

from ..options import Options
from ..scale_out import ScaleOutRun, scale_out
from ..stats import fmt

# Past one process: the machine caps open files at 20,000 per process, so 50,000 and 100,000
# streams are held the way a deployment would hold them, by several instances on one Redis.
RUNS = [(3, 17000), (6, 17000)]  # (instances, streams per instance)
QUICK_RUNS = [(3, 1000)]


@dataclass
class ScaleLine:
    """One delivery-only scale-out run in a line: held, lost, time to 100 % over rounds."""
    held: int
    asked: int
    rounds: int
    lost: int
    t100_median: float | None
    t100_range: str
    under_1s: int  # rounds in which every stream had the event within 1 s
    p99_median: float | None
    kib: float  # per stream


def summarize(X: ScaleOutRun) -> ScaleLine:
    t100 = sorted(m.t100 for m in X.rounds if m.t100 is not None)
    p99s = [m.p99 for m in X.rounds if m.p99 is not None]
    held = X.ready_total
    grown = sum(b - a for a, b in zip(X.rss0_kib, X.rss1_kib))
    return ScaleLine(
        held=held, asked=X.n_per * X.instances, rounds=len(X.rounds), lost=sum(m.lost for m in X.rounds),
        t100_median=statistics.median(t100) if t100 else None,
        t100_range=f"{t100[0]:.0f}–{t100[-1]:.0f} ms" if t100 else "n/a",
        under_1s=sum(1 for v in t100 if v < 1000),
        p99_median=statistics.median(p99s) if p99s else None,
        kib=grown / held if held else float("nan"))


@dataclass
class ScaleResult:
    runs: list[ScaleOutRun]

    def table_rows(self):
        rows = []
        for X in self.runs:
            m = summarize(X)
            rows.append(("scale", f"{m.held:,} streams on {X.instances} instances through Redis",
                         f"lost {m.lost:,} over {m.rounds} rounds, to 100% median {fmt(m.t100_median, 1)} ms "
                         f"(rounds {m.t100_range}), {m.kib:.1f} KiB per stream"))
        return rows

    def markdown(self):
        asked = " and ".join(f"{X.n_per * X.instances:,}" for X in self.runs)
        out = [f"## 7b. Past one process: {asked} streams through Redis\n"]
        out.append("This machine caps open files at 20,000 per process (a hard limit), so neither one server nor one "
                   "load client can hold 50,000 streams. They are held as a deployment would hold them: several "
                   "instances on one Redis, each with its share, exactly as in section 7 (one `sse_load` per instance, "
                   "stamped publishes through instance 0 only, rounds ≥1 s apart), without the command counts. "
                   "\"Under 1 s\" counts the rounds in which every stream of every instance had the event within 1 s "
                   "of the publish.\n")
        out.append("| streams asked | held | instances × streams | rounds | lost | to 100 % median | to 100 % range | "
                   "rounds under 1 s | p99 median | ready after | KiB per stream |")
        out.append("|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|")
        for X in self.runs:
            m = summarize(X)
            out.append(f"| {m.asked:,} | {m.held:,} | {X.instances} × {X.n_per:,} | {m.rounds} | "
                       f"{m.lost:,} | {fmt(m.t100_median, 1)} ms | {m.t100_range} | {m.under_1s} of "
                       f"{m.rounds} | {fmt(m.p99_median, 1)} ms | {X.ready_s:.1f} s | {m.kib:.1f} |")
        out.append("")
        for X in self.runs:
            per = "; ".join(f"round {m.round}: " + " / ".join(str(v) for v in m.per_instance_t100)
                            for m in X.rounds)
            out.append(f"- {X.instances} instances, to 100 % per instance (ms, instance 0 publishes): {per}. "
                       f"After the load clients exited: clients per instance {X.clients_left} after "
                       f"{X.freed_s:.2f} s; instances still running: {X.alive}. Beacon log: "
                       + ("; ".join(X.log_notes) if X.log_notes else "nothing logged."))
        out.append("")
        return out


def run(options: Options) -> ScaleResult:
    runs = QUICK_RUNS if options.quick else RUNS
    return ScaleResult([scale_out(options.beacon, options.quick, instances, n_per, measure_commands=False)
                        for instances, n_per in runs])
