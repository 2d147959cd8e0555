"""What a section is told about this run (from the command line and the binary found)."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    beacon: str  # the beacon binary measured
    quick: bool  # shorter durations, smaller N
    fanout_n: list[int] | None = None  # --fanout-n: Beacon's fan-out stream counts
    redis_n: int | None = None  # --redis-n: streams per instance in the redis section
    redis_instances: int | None = None  # --redis-instances
