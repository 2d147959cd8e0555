"""Push to every open page through Beacon, as Flask-SSE's `sse.publish` does through Redis."""
import json
import os
import urllib.request

BEACON_URL = os.environ.get("BEACON_URL", "http://127.0.0.1:8080")


def publish(data, channel="default", event=None):
    """Publishes `data` (anything JSON can carry) on `channel`; returns Beacon's event id."""
    body = {"channel": channel, "data": data, **({"event": event} if event else {})}
    request = urllib.request.Request(f"{BEACON_URL}/__beacon/publish", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer).get("id")
