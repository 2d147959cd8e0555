"""The Flask-SSE side of the fan-out benchmark: the smallest app the Flask-SSE docs describe.

    REDIS_URL=redis://127.0.0.1:PORT/0 gunicorn -k gevent --bind 127.0.0.1:P flask_sse_app:app

Streams: GET /stream?channel=NAME. sections/fanout.py publishes with redis PUBLISH (what sse.publish does),
so a saturated worker cannot hold the publisher back.
"""
import os

from flask import Flask
from flask_sse import sse

app = Flask(__name__)
app.config["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
app.register_blueprint(sse, url_prefix="/stream")


@app.route("/")
def index():
    return "ok\n"
