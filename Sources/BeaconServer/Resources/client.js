// Beacon live client: listens to the server's event stream and applies what it says.
// Injected into every HTML page as <script src="/__beacon/client.js">. Plain JS, no build step.
(() => {
  "use strict";
  if (window.__beacon) return; // injected twice (e.g. a page including it by hand): run once
  const beacon = (window.__beacon = { server: null, connected: false, received: 0 });
  let source = null;
  let retryDelay = 500;

  const log = (...args) => console.debug("[beacon]", ...args);
  const parse = (data) => { try { return JSON.parse(data); } catch { return {}; } };

  function connect() {
    source = new EventSource("/__beacon/events");
    source.addEventListener("hello", (e) => {
      const { server } = parse(e.data);
      retryDelay = 500;
      beacon.connected = true;
      // A new server id means the server restarted: what it serves may have changed while we
      // were away, so reload once. The first hello of this page load just records the id.
      if (beacon.server && server && beacon.server !== server) {
        log("server restarted, reloading");
        location.reload();
        return;
      }
      beacon.server = server;
    });
    source.addEventListener("css", (e) => {
      beacon.received++;
      swapStylesheet(parse(e.data).path);
    });
    source.addEventListener("reload", (e) => {
      beacon.received++;
      log("reload", parse(e.data).path);
      location.reload();
    });
    // HTML pushed into the page by a publisher: {"selector", "html", "swap"}.
    source.addEventListener("fragment", (e) => {
      beacon.received++;
      applyFragment(parse(e.data));
    });
    // The server no longer holds the events we missed: start from a fresh page.
    source.addEventListener("reset", () => location.reload());
    source.onerror = () => {
      beacon.connected = false;
      // EventSource retries by itself while CONNECTING; once CLOSED (e.g. the server answered
      // with an error while restarting) it gives up, so retry ourselves with backoff.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 5000);
      }
    };
  }

  // Swap <link rel=stylesheet> elements in place: the new link loads before the old one goes,
  // so the page never shows unstyled content, and nothing reloads.
  function swapStylesheet(path) {
    const links = [...document.querySelectorAll('link[rel~="stylesheet"][href]')].filter(
      (link) => !link.dataset.beaconRetiring
    );
    const sameOrigin = links.filter((link) => new URL(link.href, location.href).origin === location.origin);
    let targets = sameOrigin.filter((link) => new URL(link.href, location.href).pathname === path);
    // Not linked directly (pulled in with @import, say): refresh every local stylesheet.
    if (targets.length === 0) targets = sameOrigin;
    log("css", path, targets.length);
    for (const link of targets) {
      const next = link.cloneNode();
      const url = new URL(link.href, location.href);
      url.searchParams.set("beacon", Date.now().toString(36));
      next.href = url.href;
      link.dataset.beaconRetiring = "1";
      const retire = () => link.remove();
      next.addEventListener("load", retire, { once: true });
      next.addEventListener("error", retire, { once: true });
      link.after(next);
    }
  }

  // Swap modes mirror htmx's hx-swap: inner (default), outer, append, prepend, remove.
  // Every element matching the selector is patched; a page without a match ignores the event.
  function applyFragment({ selector, html = "", swap = "inner" }) {
    let targets;
    try {
      targets = document.querySelectorAll(selector);
    } catch {
      log("bad selector", selector);
      return;
    }
    for (const target of targets) {
      switch (swap) {
        case "inner": target.innerHTML = html; break;
        case "outer": target.outerHTML = html; break;
        case "append": target.insertAdjacentHTML("beforeend", html); break;
        case "prepend": target.insertAdjacentHTML("afterbegin", html); break;
        case "remove": target.remove(); break;
        default: log("unknown swap", swap);
      }
    }
    document.dispatchEvent(new CustomEvent("beacon:fragment", { detail: { selector, swap, count: targets.length } }));
  }

  connect();
  // Close the stream when the page is left (frees the connection at once), and open it again
  // if the page comes back from the back-forward cache.
  window.addEventListener("pagehide", () => source && source.close());
  window.addEventListener("pageshow", (e) => { if (e.persisted) connect(); });
})();
