"""The idle trim, from outside: once a server that did something has gone quiet, the clean pages of
its executable are given back (its code's resident size falls, as `top` would show), and it goes
on serving pages, events and edits exactly as before.

Takes about half a minute: the trim looks once every 10 s and waits for a quiet interval.
"""

import http.client
import json
import os
import time

from helpers import HTTP_TIMEOUT, StreamRecorder, write_atomically

WAIT_FOR_TRIM = 45.0  # seconds: two or three of the trim's 10 s intervals, with room on a busy machine


def code_resident_kib(pid: int) -> int:
    """Resident KiB of the executable's code mappings (/proc/PID/smaps)."""
    exe = os.path.realpath(f"/proc/{pid}/exe")
    total, in_code = 0, False
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if fields and "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                in_code = len(fields) >= 6 and fields[5] == exe and "x" in fields[1]
            elif in_code and fields[:1] == ["Rss:"]:
                total += int(fields[1])
    return total


def get(server, path: str):
    conn = http.client.HTTPConnection("127.0.0.1", int(server.base_url.rsplit(":", 1)[1].strip("/")), timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_quiet_server_gives_back_its_code_pages_and_serves_on(server):
    stream = StreamRecorder(server)
    try:
        stream.wait_for(lambda events: any(name == "hello" for _, name, _ in events), "its hello")
        status, body = get(server, "/")
        assert status == 200 and b"/__beacon/client.js" in body
        assert get(server, "/__beacon/client.js")[0] == 200
        before = code_resident_kib(server.process.pid)
        assert before > 0, "no resident code found for the server's executable"

        # Quiet now, with a page's stream open: within a few intervals the code is given back.
        deadline = time.monotonic() + WAIT_FOR_TRIM
        now = before
        while time.monotonic() < deadline:
            now = code_resident_kib(server.process.pid)
            if now < before / 2:
                break
            time.sleep(0.5)
        assert now < before / 2, (f"the executable's resident code stayed at {now} KiB (was {before} KiB) for "
                                  f"{WAIT_FOR_TRIM:.0f} s of quiet\n{server.log()}")

        # Everything works as before: a page, a publish to the open stream, an edit pushed to it.
        status, body = get(server, "/")
        assert status == 200 and b"/__beacon/client.js" in body
        port = int(server.base_url.rsplit(":", 1)[1].strip("/"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        conn.request("POST", "/__beacon/publish", body=json.dumps({"data": "after the trim"}),
                     headers={"Content-Type": "application/json"})
        assert conn.getresponse().status == 202
        conn.close()
        stream.wait_for(lambda events: any("after the trim" in json.dumps(data) for _, _, data in events), "the published event")
        style = server.site_dir / "style.css"
        write_atomically(style, style.read_text(encoding="utf-8") + "\nbody { color: rgb(1, 2, 3); }\n")
        stream.wait_for(lambda events: any(name == "css" for _, name, _ in events), "the css event of an edit")
        assert server.process.poll() is None, f"the server exited\n{server.log()}"
    finally:
        stream.close()
