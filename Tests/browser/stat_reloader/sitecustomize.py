"""Loaded by the Flask servers the tests start (on their PYTHONPATH): Werkzeug's stat reloader,
whether or not watchdog is installed (mkdocs, which the tests install, brings it). Watchdog's
reloader watches every folder on sys.path and, on a busy machine, overflows its inotify queue and
misses the edit the test makes; the stat reloader checks each file every second, always."""

try:
    import werkzeug._reloader as reloader

    reloader.reloader_loops["auto"] = reloader.StatReloaderLoop
except Exception:  # no Werkzeug, or another layout: leave the default
    pass
