// The SharedWorker: one stream per browser, relayed to every tab of the site. In the worker the
// script ends here (the page parts below need a window).
if (typeof window === "undefined") {
  const ports = new Set();
  let hello = null;
  openStream((name, data) => {
    hello = laterHello(hello, name, data);
    for (const port of ports) port.postMessage({ name, data });
  });
  self.onconnect = (e) => {
    const port = e.ports[0];
    ports.add(port);
    port.onmessage = (m) => { if (m.data === "bye") ports.delete(port); };
    port.start();
    if (hello) port.postMessage({ name: "hello", data: hello });
  };
  return;
}

