"""The sections, in the order they run and appear in RESULTS.md; a section's name is what --only takes.
Each section's run(options) returns its own dataclass, which renders its rows of the terminal table
(table_rows) and its part of RESULTS.md (markdown, a list of lines)."""
from dataclasses import dataclass
from typing import Callable, Protocol

from ..options import Options
from . import fanout, floor, footprint, https, idle, latency, metrics, polling, proxy, redis, scale, static, watcher


class SectionResult(Protocol):
    def table_rows(self) -> list[tuple[str, str, str]]: ...

    def markdown(self) -> list[str]: ...


@dataclass(frozen=True)
class Section:
    name: str
    run: Callable[[Options], SectionResult]


SECTIONS = (
    Section("static", static.run),
    Section("latency", latency.run),
    Section("fanout", fanout.run),
    Section("watcher", watcher.run),
    Section("idle", idle.run),
    Section("polling", polling.run),
    Section("footprint", footprint.run),
    Section("redis", redis.run),
    Section("scale", scale.run),
    Section("proxy", proxy.run),
    Section("floor", floor.run),
    Section("https", https.run),
    Section("metrics", metrics.run),
)
NAMES = [s.name for s in SECTIONS]
