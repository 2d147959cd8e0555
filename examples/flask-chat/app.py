"""The chat from the question Beacon grew from: a Flask app that pushes to its pages.

    flask --app app run --port 5000 &
    beacon serve --proxy http://127.0.0.1:5000 --watch templates --watch static

A message posted by the form goes to every open page at once (Beacon's `chat` channel), and the
server feeds a live div (`/tick` publishes the time). Flask needs no Redis, gevent or gunicorn:
Beacon holds the streams, and the app publishes with a plain HTTP POST.
"""
import time

from flask import Flask, Response, redirect, render_template, request, url_for

from beacon_push import publish

app = Flask(__name__)
messages = []  # the page's history, newest last (a real app would use its database)


@app.get("/")
def index():
    return render_template("index.html", messages=messages[-50:])


@app.post("/send")
def send():
    text = request.form.get("text", "").strip()[:500]
    if text:
        messages.append(text)
        publish({"text": text}, channel="chat", event="said")
    # A form without JavaScript lands back on the page; with it, fetch() ignores the redirect.
    return redirect(url_for("index"), code=303)


@app.post("/tick")
def tick():
    """Feeds the live div: the server decides what it shows."""
    publish(time.strftime("%H:%M:%S"), channel="status", event="time")
    return {"ok": True}


@app.get("/stream")
def stream():
    """An SSE route of the app's own, for apps that stream themselves: Beacon passes it unbuffered."""
    count = min(int(request.args.get("count", 5)), 100)

    def events():
        for i in range(count):
            yield f"data: {i} {time.time():.3f}\n\n"
            time.sleep(0.2)

    return Response(events(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})
