"""The app the proxy tests stand Beacon in front of: one route per behaviour under test."""
import gzip
import threading
import time
import zlib

from flask import Flask, Response, make_response, redirect, request

app = Flask(__name__)
seen = []  # (method, path, Host, selected headers) of every request that reached the app
streams = {"open": 0, "closed": 0}
lock = threading.Lock()
PAGE = "<!doctype html><html><head><title>t</title></head><body><h1>app page</h1></body></html>"


@app.before_request
def record():
    with lock:
        seen.append({"method": request.method, "path": request.full_path, "host": request.host,
                     "headers": {k.lower(): v for k, v in request.headers.items()}})


@app.get("/seen")
def seen_requests():
    with lock:
        return {"seen": seen, "streams": streams}


@app.get("/")
def page():
    return PAGE


@app.get("/has-client")
def has_client():
    return '<html><body><script src="/__beacon/client.js"></script></body></html>'


@app.get("/compressed/<coding>")
def compressed(coding):
    body = PAGE.encode()
    packed = {"gzip": gzip.compress, "deflate": zlib.compress, "br": lambda b: b"\x0b\x02\x80not-really-br"}[coding](body)
    return Response(packed, headers={"Content-Encoding": coding, "Content-Type": "text/html; charset=utf-8"})


@app.get("/json")
def json_bytes():
    return Response(b'{"k": "v",  "n": [1,2,3]}\n', mimetype="application/json")


@app.get("/huge")
def huge():
    size = int(request.args.get("mb", 50)) << 20
    line = ("<p>" + "x" * 1000 + "</p>\n").encode()

    def chunks():
        yield b"<!doctype html><html><body>\n"
        for _ in range(size // len(line)):
            yield line
        yield b"</body></html>\n"

    return Response(chunks(), mimetype="text/html")


@app.route("/echo", methods=["POST", "PUT", "PATCH", "DELETE"])
def echo():
    data = request.get_data()
    return {"method": request.method, "length": len(data), "sum": sum(data) % 65536,
            "type": request.headers.get("Content-Type")}


@app.get("/redirect")
def go():
    response = make_response(redirect(f"http://{request.args['to']}/landing?x=1"))
    response.headers.add("Set-Cookie", 'session="a b"; Domain=127.0.0.1; Secure; HttpOnly; Path=/; SameSite=Lax')
    response.headers.add("Set-Cookie", "theme=dark; Path=/; SameSite=Strict")
    response.headers.add("Set-Cookie", "other=1; Domain=example.test; Path=/")
    return response


@app.get("/csp")
def csp():
    response = make_response(PAGE)
    response.headers["Content-Security-Policy"] = "default-src 'self'; script-src 'self' 'nonce-r4nd0m'"
    return response


@app.get("/events")
def events():
    count = int(request.args.get("count", 20))

    def stream():
        with lock:
            streams["open"] += 1
        try:
            for i in range(count):
                yield f"data: {time.time():.6f}\n\n"
                time.sleep(0.1)
        finally:
            with lock:
                streams["closed"] += 1

    return Response(stream(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})


@app.get("/huge-binary")
def huge_binary():
    size = int(request.args.get("mb", 50)) << 20
    block = b"y" * int(request.args.get("piece", 65536))
    return Response((block for _ in range(size // len(block))), mimetype="application/octet-stream")
