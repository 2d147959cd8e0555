// What each event does in this tab, by name: the names and payloads are the server's WireEvent
// (Sources/EventHub/WireEvent.swift). Live-reload events act only in the tabs they target.
const targeted = (handle) => (data) => { if (targetsMe(data)) handle(data); };

const handlers = {
  reset: () => reload("missed events"),
  // A plain `message` published on the default channel, for the page's own scripts.
  message: (data, raw) => document.dispatchEvent(new CustomEvent("beacon:message", { detail: raw })),
  patch: applyPatch,
  css: targeted((data) => swapStylesheets(received(data))),
  image: targeted((data) => refreshImages(received(data))),
  reload: targeted((data) => { rememberForReload(received(data)); reload(data.path); }),
  // A changed page; before 0.2, `fragment` also named a published patch (a peer on an older
  // version may still send one through Redis): it has a selector.
  fragment: (data) => (typeof data.selector === "string" ? applyPatch(data) : targeted(patchPage)(received(data))),
  build: showBuild,
  missing: showMissing,
};

function dispatch(name, raw) {
  if (name === "down") { beacon.connected = false; return; }
  if (name === "hello") {
    const { server, build, console: forwarding, overlay } = parse(raw);
    beacon.connected = true;
    beacon.overlays = overlay !== false;
    consoleReady(forwarding === true);
    missingBeforeHello();
    showBuild(build); // a failing build shows at once; none (or a success since) clears it
    // A new server id means the server restarted: files may have changed meanwhile.
    if (beacon.server && server && beacon.server !== server) return reload("server restarted");
    beacon.server = server;
    return;
  }
  beacon.received++;
  const handle = Object.hasOwn(handlers, name) ? handlers[name] : null;
  if (handle) handle(name === "message" ? null : parse(raw), raw);
}
