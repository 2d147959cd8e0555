"""What the hostile batteries of `serve --proxy` share: a Beacon of each kind in front of one app,
since they run every case through both of its paths, "front" (no folder: GET and HEAD go from
the front door's route) and "routed" (a folder that lacks the paths: everything goes through the
router's proxy); and checks made of checks."""

from conftest import beacon_server

VARIANTS = ("front", "routed")


class ProxyBeacons:
    """One Beacon per variant, started at first use and again if a case killed it."""

    def __init__(self, factory, app_port: int, name: str):
        self.factory = factory  # pytest's tmp_path_factory
        self.url = f"http://127.0.0.1:{app_port}"
        self.name = name
        self.contexts = {}
        self.beacons = {}
        self.starts = 0

    def beacon(self, variant: str):
        beacon = self.beacons.get(variant)
        if beacon is None or beacon.process.poll() is not None:
            self.close(variant)
            self.starts += 1
            tmp = self.factory.mktemp(f"{self.name}-{variant}-{self.starts}")
            context = beacon_server(tmp, extra_args=("--proxy", self.url), site_dir=variant == "routed")
            self.beacons[variant] = context.__enter__()
            self.contexts[variant] = context
        return self.beacons[variant]

    def close(self, variant: str):
        context = self.contexts.pop(variant, None)
        self.beacons.pop(variant, None)
        if context is not None:
            context.__exit__(None, None, None)

    def stop(self):
        for variant in list(self.contexts):
            self.close(variant)


def all_of(*checks):
    """A check that makes each of `checks` (each `check(subject, ctx)`), in order."""
    def check(subject, c):
        for one in checks:
            one(subject, c)
    return check
