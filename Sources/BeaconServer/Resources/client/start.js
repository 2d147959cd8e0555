// Transports: a SharedWorker, else a leader tab elected with Web Locks, else a stream per tab.
function start() {
  if (typeof SharedWorker === "function") {
    try {
      const worker = new SharedWorker("/__beacon/client.js", { name: "beacon" });
      worker.port.onmessage = (e) => dispatch(e.data.name, e.data.data);
      worker.port.start();
reportReloadTiming();
      window.addEventListener("pagehide", () => worker.port.postMessage("bye"));
      beacon.transport = "shared-worker";
      return;
    } catch (e) {
      log("no SharedWorker", e);
    }
  }
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

