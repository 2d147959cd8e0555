// Transports: a SharedWorker, else a leader tab elected with Web Locks, else a stream per tab.
function start() {
  // A page that gave our script a nonce has a policy that allows scripts by nonce, which a worker
  // cannot carry: the browser would refuse it (and say so in the console), so do not ask.
  if (typeof SharedWorker === "function" && !beacon.nonce) {
    try {
      const worker = new SharedWorker("/__beacon/client.js", { name: "beacon" });
      worker.port.onmessage = (e) => dispatch(e.data.name, e.data.data);
      worker.port.start();
      window.addEventListener("pagehide", () => worker.port.postMessage("bye"));
      // A worker that cannot start (a Content-Security-Policy that does not allow it, say) says
      // so here, not by throwing: the tab then opens the stream another way.
      worker.addEventListener("error", () => {
        if (beacon.transport !== "shared-worker" || beacon.connected) return;
        log("the SharedWorker could not start; using the next transport");
        startWithoutWorker();
      });
      beacon.transport = "shared-worker";
      return;
    } catch (e) {
      log("no SharedWorker", e);
    }
  }
  startWithoutWorker();
}

function startWithoutWorker() {
  if (navigator.locks && typeof BroadcastChannel === "function") {
    const channel = new BroadcastChannel("beacon");
    let hello = null;
    channel.onmessage = (e) => {
      const m = e.data;
      if (m.kind === "event") dispatch(m.name, m.data);
      else if (m.kind === "ask" && hello) channel.postMessage({ kind: "event", name: "hello", data: hello });
    };
    channel.postMessage({ kind: "ask" });
    // The lock is held until this tab goes away; then the next tab in line opens the stream.
    navigator.locks.request("beacon-leader", () => new Promise(() => {
      beacon.transport = "leader";
      openStream((name, data) => {
        hello = laterHello(hello, name, data);
        channel.postMessage({ kind: "event", name, data });
        dispatch(name, data);
      });
    }));
    beacon.transport = "follower";
    return;
  }
  const source = openStream(dispatch);
  beacon.transport = source ? "direct" : "none";
  if (source) window.addEventListener("pagehide", () => source.close());
}

