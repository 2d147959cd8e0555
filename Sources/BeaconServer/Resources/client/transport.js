// The event stream. Every file in this folder is one part of the page client; the server joins
// them, in the order ClientScript lists them, into one script (/__beacon/client.js) that shares a
// single scope — no build step, and the same file runs as the SharedWorker.

// The stream's event names the client listens for: the server's WireEvent names, plus `message`
// (what a publisher sends by default) and `fragment`'s old meaning (see dispatch.js).
const EVENTS = ["hello", "css", "image", "fragment", "reload", "reset", "patch", "build", "missing", "message"];

// The `hello` a tab that joins later gets from the tab or worker holding the stream: with the
// build state the events since have changed, as the server's own hello would carry it.
function laterHello(hello, name, data) {
  if (name === "hello") return data;
  if (name !== "build" || !hello) return hello;
  try {
    const h = JSON.parse(hello), report = JSON.parse(data);
    if (report.ok) delete h.build; else h.build = report;
    return JSON.stringify(h);
  } catch { return hello; }
}

// Opens the event stream and hands each event to `sink(name, data)`. EventSource reconnects by
// itself (sending Last-Event-ID); once it gives up (CLOSED), retry with backoff. Where there is
// no EventSource (every current browser has it), nothing: the page works on, silently.
function openStream(sink) {
  if (typeof EventSource !== "function") return null;
  let delay = 500;
  const connect = () => {
    const source = new EventSource("/__beacon/events");
    for (const name of EVENTS) {
      source.addEventListener(name, (e) => {
        if (name === "hello") delay = 500;
        sink(name, e.data);
      });
    }
    source.onerror = () => {
      sink("down", null);
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 5000);
      }
    };
    return source;
  };
  return connect();
}

