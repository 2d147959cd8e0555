"""The run's outputs: the table printed at the end, and RESULTS.md (the machine, the versions, each
section's part, the commands run, and the failures)."""
import datetime
from dataclasses import dataclass

from .machine import Machine
from .sections import NAMES, SectionResult


@dataclass
class Report:
    quick: bool
    sections: list[str]  # the names of the sections reported
    started: datetime.datetime
    elapsed_s: float
    machine: Machine
    build_note: str
    loadavg_end: str
    versions: dict[str, str]  # tool -> version
    results: list[SectionResult]  # in the sections' order
    commands: dict[str, list[str]]  # section -> command lines run
    failures: list[tuple[str, str]]  # (section, error)

    def table_rows(self):
        rows = [row for result in self.results for row in result.table_rows()]
        return rows + [(sec, "FAILED", err[:200]) for sec, err in self.failures]

    def markdown(self):
        m = self.machine
        out = ["# Beacon benchmark results\n"]
        out.append(f"Written by `benchmarks/run.py{' --quick' if self.quick else ''}"
                   f"{' --only ' + ','.join(self.sections) if self.sections != NAMES else ''}` on "
                   f"{self.started.strftime('%Y-%m-%d %H:%M UTC')} ({self.elapsed_s / 60:.1f} min). "
                   f"Mode: **{'quick' if self.quick else 'full'}**. Everything ran on this one machine, over loopback; "
                   "the load generators share its cores with the servers, so read the ratios measured side by side "
                   "rather than the absolute figures.\n")
        out.append("## Machine\n")
        out.append(f"- {m.nproc} CPUs ({m.cpu}), {m.mem} memory, kernel {m.kernel}, {m.os}")
        out.append(f"- beacon binary: {self.build_note}")
        out.append(f"- open files per process: soft {m.nofile[0]:,}, hard {m.nofile[1]:,}")
        out.append(f"- load average (1, 5, 15 min) at the start: {m.loadavg}; at the end: {self.loadavg_end} "
                   "(anything above ~0.2 means other work shared the 2 cores during the run)")
        out.append("- versions: " + "; ".join(f"{k} `{val}`" for k, val in self.versions.items()) + "\n")
        for result in self.results:
            out.extend(result.markdown())
        out.append("## Commands\n")
        out.append("Temporary folders are created under /tmp and removed at the end; ports are free ones picked at run "
                   "time (beacon: `--port 0`, others: a socket bound to 127.0.0.1:0 and closed).\n")
        out.append("```")
        for sec, cmds in self.commands.items():
            out.append(f"# {sec}")
            out.extend(cmds)
        out.append("```")
        text = "\n".join(out) + "\n"
        if self.failures:
            text += "\n## Failures\n\n" + "\n".join(f"- {s}: {e}" for s, e in self.failures) + "\n"
        return text


def print_table(rows):
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    line = "-" * (w1 + w2 + 70)
    print(line)
    print(f"{'section':{w1}}  {'case':{w2}}  figure")
    print(line)
    for s, c, f in rows:
        print(f"{s:{w1}}  {c:{w2}}  {f}")
    print(line)
