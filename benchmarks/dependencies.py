"""Installs what the selected sections need and is missing: apt packages (as root or with sudo -n) and
pip packages."""
import os
import shutil
import subprocess
import sys

from .common import BenchError, log
from .processes import run
from .servers import nginx_bin


def ensure_deps(sections):
    need = []  # (check, [apt package alternatives])
    if "static" in sections or "proxy" in sections:
        need += [(nginx_bin, ["nginx-light", "nginx"]), (lambda: shutil.which("wrk"), ["wrk"])]
    if "footprint" in sections:
        need += [(nginx_bin, ["nginx-light", "nginx"]), (lambda: shutil.which("inotifywait"), ["inotify-tools"])]
    if "latency" in sections or "watcher" in sections:
        need += [(lambda: shutil.which("inotifywait"), ["inotify-tools"])]
    if "fanout" in sections or "redis" in sections or "scale" in sections:
        need += [(lambda: shutil.which("gcc"), ["gcc"]), (lambda: shutil.which("redis-server"), ["redis-server"])]
    missing = [alts for check, alts in need if not check()]
    if missing:
        sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
        if sudo is None:
            raise BenchError(f"missing {missing} and not root (no sudo): install them first")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log("apt-get update (once), then install: " + ", ".join(a[0] for a in missing))
        run(sudo + ["apt-get", "update", "-qq"], timeout=600, env=env)
        # Keep the packages' maintainer scripts from starting system services (nginx on port 80).
        policy = "/usr/sbin/policy-rc.d"
        made_policy = False
        if os.geteuid() == 0 and not os.path.exists(policy):
            with open(policy, "w") as f:
                f.write("#!/bin/sh\nexit 101\n")
            os.chmod(policy, 0o755)
            made_policy = True
        try:
            for alts in missing:
                for i, pkg in enumerate(alts):
                    r = run(sudo + ["apt-get", "install", "-y", "-qq", pkg], timeout=900, env=env, check=False)
                    if r.returncode == 0:
                        break
                    if i == len(alts) - 1:
                        raise BenchError(f"apt-get install {pkg} failed: {r.stderr.strip()[-500:]}")
        finally:
            if made_policy:
                os.remove(policy)
    pip = []
    if "static" in sections:
        pip += [("livereload", "livereload")]
    if "fanout" in sections:
        pip += [("flask", "flask"), ("flask_sse", "flask-sse"), ("gunicorn", "gunicorn"), ("gevent", "gevent"),
                ("redis", "redis")]
    missing_pip = [pkg for mod, pkg in pip
                   if subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True).returncode != 0]
    if missing_pip:
        log("pip install " + " ".join(missing_pip))
        run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"] + missing_pip, timeout=900)
