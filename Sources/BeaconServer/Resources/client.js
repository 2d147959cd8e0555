// Beacon live client. Injected into every HTML page as <script src="/__beacon/client.js">;
// the same file runs as the SharedWorker that holds the one event stream all tabs share.
// Plain JavaScript, no build step. The protocol is described in README.md ("Events").
(() => {
  "use strict";
  const EVENTS = ["hello", "css", "image", "fragment", "reload", "reset", "message"];

  // Opens the event stream and hands each event to `sink(name, data)`. EventSource reconnects by
  // itself (sending Last-Event-ID); once it gives up (CLOSED), retry with backoff.
  function openStream(sink) {
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

  // ---- SharedWorker: one stream per browser, relayed to every tab of the site ----
  if (typeof window === "undefined") {
    const ports = new Set();
    let hello = null;
    openStream((name, data) => {
      if (name === "hello") hello = data;
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

  // ---- The page ----
  if (window.__beacon) return; // included twice: run once
  const beacon = (window.__beacon = {
    server: null, connected: false, received: 0, transport: null,
    page: pageKey(location.pathname), applied: [], checked: 0, // checked: page updates considered (applied or not)
  });
  const log = (...args) => console.debug("[beacon]", ...args);
  const parse = (data) => { try { return JSON.parse(data); } catch { return {}; } };
  const isBeaconNode = (n) => n.nodeType === 1 && n.tagName === "SCRIPT" && /\/__beacon\/client\.js$/.test(n.getAttribute("src") || "");

  // `/`, `/index.html`, `/dir/` and `/dir/index.html` are one page; the server names pages the same way.
  function pageKey(pathname) {
    let path = pathname;
    try { path = decodeURIComponent(pathname); } catch {}
    const segments = [];
    for (const s of path.split("/")) {
      if (!s || s === ".") continue;
      if (s === "..") segments.pop(); else segments.push(s);
    }
    let key = "/" + segments.join("/") + (path.endsWith("/") && segments.length ? "/" : "");
    const lower = key.toLowerCase();
    if (lower.endsWith("/index.html")) key = key.slice(0, -10);
    else if (lower.endsWith("/index.htm")) key = key.slice(0, -9);
    return key;
  }

  // Is this tab one the event is for? `pages: null` means every page but those in `except`.
  function targetsMe(data) {
    if (data.pages === undefined) return true; // published by hand: for everyone
    if (data.pages === null) return !(data.except || []).includes(beacon.page);
    return data.pages.includes(beacon.page);
  }

  const note = (type, detail) => {
    beacon.applied.push({ type, at: performance.now(), ...detail });
    document.dispatchEvent(new CustomEvent("beacon:" + type, { detail }));
  };

  function reload(why) {
    log("reload", why);
    location.reload();
  }

  function dispatch(name, raw) {
    if (name === "down") { beacon.connected = false; return; }
    if (name === "hello") {
      const { server } = parse(raw);
      beacon.connected = true;
      // A new server id means the server restarted: files may have changed meanwhile.
      if (beacon.server && server && beacon.server !== server) return reload("server restarted");
      beacon.server = server;
      return;
    }
    beacon.received++;
    if (name === "reset") return reload("missed events");
    if (name === "message") {
      document.dispatchEvent(new CustomEvent("beacon:message", { detail: raw }));
      return;
    }
    const data = parse(raw);
    if (name === "fragment" && typeof data.selector === "string") return applyFragment(data);
    if (!targetsMe(data)) return;
    if (name === "reload") return reload(data.path);
    if (name === "css") return swapStylesheets(data);
    if (name === "image") return refreshImages(data);
    if (name === "fragment") return patchPage(data);
  }

  // ---- Transport: a SharedWorker, else a leader tab elected with Web Locks, else a stream per tab ----
  function start() {
    if (typeof SharedWorker === "function") {
      try {
        const worker = new SharedWorker("/__beacon/client.js", { name: "beacon" });
        worker.port.onmessage = (e) => dispatch(e.data.name, e.data.data);
        worker.port.start();
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
          if (name === "hello") hello = data;
          channel.postMessage({ kind: "event", name, data });
          dispatch(name, data);
        });
      }));
      beacon.transport = "follower";
      return;
    }
    const source = openStream(dispatch);
    beacon.transport = "direct";
    window.addEventListener("pagehide", () => source.close());
  }

  // ---- Stylesheets: swap in place, the new link loaded before the old one goes (no flash) ----
  const sameOrigin = (url) => { try { return new URL(url, location.href).origin === location.origin; } catch { return false; } };
  const pathOf = (url) => { try { return pageKeyless(new URL(url, location.href).pathname); } catch { return ""; } };
  function pageKeyless(pathname) { try { return decodeURIComponent(pathname); } catch { return pathname; } }

  function importsAny(sheet, paths, depth = 0) {
    if (!sheet || depth > 8) return false;
    let rules;
    try { rules = sheet.cssRules; } catch { return false; }
    for (const rule of rules || []) {
      if (rule.type === CSSRule.IMPORT_RULE) {
        if (paths.includes(pathOf(rule.href ? new URL(rule.href, sheet.href || location.href).href : ""))) return true;
        if (importsAny(rule.styleSheet, paths, depth + 1)) return true;
      }
    }
    return false;
  }

  function swapStylesheets(data) {
    const wanted = new Set([...(data.stylesheets || []), ...(data.paths || [data.path])]);
    const paths = data.paths || [data.path];
    const links = [...document.querySelectorAll('link[rel~="stylesheet"][href]')]
      .filter((l) => !l.dataset.beaconRetiring && sameOrigin(l.href));
    const targets = links.filter((l) => wanted.has(pathOf(l.href)) || importsAny(l.sheet, paths));
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
    if (targets.length) note("css", { paths, count: targets.length });
  }

  // ---- Images: <img>, <source>, srcset, icons, inline and stylesheet background-image ----
  // Adds (or renews) ?beacon= on a URL as written, relative or not, so the morph can still
  // recognise it as the file's own URL.
  function bust(url) {
    const hash = url.indexOf("#");
    const base = unbust(hash < 0 ? url : url.slice(0, hash));
    return base + (base.includes("?") ? "&" : "?") + "beacon=" + Date.now().toString(36) + (hash < 0 ? "" : url.slice(hash));
  }

  function refreshImages(data) {
    const paths = new Set(data.paths || [data.path]);
    const matches = (url) => sameOrigin(url) && paths.has(pathOf(url));
    const rewriteSrcset = (srcset) => srcset.split(",").map((part) => {
      const [url, ...rest] = part.trim().split(/\s+/);
      return url && matches(url) ? [bust(url), ...rest].join(" ") : part.trim();
    }).join(", ");
    const urlPattern = /url\(\s*(['"]?)([^'")]+)\1\s*\)/g;
    const rewriteCSS = (value) => value.replace(urlPattern, (all, q, url) => (matches(url) ? `url("${bust(url)}")` : all));
    let count = 0;
    for (const img of document.querySelectorAll("img[src], input[type=image][src], link[rel~=icon][href]")) {
      const attr = img.tagName === "LINK" ? "href" : "src";
      if (matches(img.getAttribute(attr))) { img.setAttribute(attr, bust(img.getAttribute(attr))); count++; }
    }
    for (const el of document.querySelectorAll("[srcset]")) {
      const next = rewriteSrcset(el.getAttribute("srcset"));
      if (next !== el.getAttribute("srcset")) { el.setAttribute("srcset", next); count++; }
    }
    for (const el of document.querySelectorAll("[style]")) {
      const value = el.style.backgroundImage;
      if (value && value !== rewriteCSS(value)) { el.style.backgroundImage = rewriteCSS(value); count++; }
    }
    const visit = (sheet, depth) => {
      let rules;
      try { rules = sheet.cssRules; } catch { return; }
      for (const rule of rules || []) {
        if (rule.styleSheet && depth < 8) visit(rule.styleSheet, depth + 1);
        if (rule.cssRules && !rule.styleSheet) visit(rule, depth + 1);
        if (rule.style) {
          for (const prop of ["background-image", "background", "list-style-image", "border-image-source", "content"]) {
            const value = rule.style.getPropertyValue(prop);
            if (value && value.includes("url(")) {
              // url() in a stylesheet is relative to the sheet; resolve it against the sheet's URL.
              const base = (sheet.href || (sheet.parentStyleSheet && sheet.parentStyleSheet.href)) || location.href;
              const next = value.replace(urlPattern, (all, q, url) => {
                const absolute = new URL(url, base).href;
                return matches(absolute) ? `url("${bust(absolute)}")` : all;
              });
              if (next !== value) { rule.style.setProperty(prop, next, rule.style.getPropertyPriority(prop)); count++; }
            }
          }
        }
      }
    };
    for (const sheet of document.styleSheets) visit(sheet, 0);
    if (count) note("image", { paths: [...paths], count });
  }

  // ---- HTML edits: fetch the page, and patch the DOM in place (morph) ----
  const signature = (doc) => ({
    head: [...doc.head.children].filter((n) => n.tagName !== "TITLE" && !isBeaconNode(n) && !n.dataset.beaconRetiring)
      .map((n) => n.outerHTML.replace(/([?&])beacon=[a-z0-9]+&?/g, "$1")).join("\n"),
    scripts: [...doc.querySelectorAll("script")].filter((n) => !isBeaconNode(n))
      .map((n) => (n.getAttribute("src") || "") + "\u0000" + n.textContent + "\u0000" + (n.type || "")).join("\n"),
  });
  const unbust = (value) => value == null ? value
    : value.replace(/([?&])beacon=[a-z0-9]+&?/g, "$1").replace(/[?&](?=["')\s,]|$)/g, "");
  let base = signature(document);
  let patching = null;
  let again = false;
  let latest = null;

  function patchPage(data) {
    // One patch at a time; a change that lands meanwhile triggers one more (with the newest
    // event), never a pile-up.
    latest = data;
    if (patching) { again = true; return; }
    patching = (async () => {
      do {
        again = false;
        await patchOnce(latest);
        beacon.checked++;
      } while (again);
      patching = null;
    })();
  }

  // The file this tab shows, as the server names changed files: `/dir/` is `/dir/index.html`.
  function shownFile() {
    try {
      const path = decodeURIComponent(location.pathname);
      return path.endsWith("/") ? path + "index.html" : path;
    } catch {
      return null;
    }
  }

  async function patchOnce(data) {
    if (document.querySelector('meta[name="beacon-status"]')) return reload("the page exists now");
    let text;
    if (typeof data.html === "string" && data.path === shownFile()) {
      text = data.html; // the server sent this page with the event: no fetch
    } else {
      let response;
      try {
        response = await fetch(location.href, { cache: "no-store", headers: { "X-Beacon": "patch" } });
      } catch {
        return; // the server is away; the next change retries
      }
      if (!response.ok) return reload(`the page answered ${response.status}`);
      text = await response.text();
    }
    // A half-written file (an editor mid-save): apply nothing; the save that completes it will.
    if (!text.trim() || (/<(html|body)[\s>]/i.test(text) && !/<\/(body|html)\s*>/i.test(text))) return log("incomplete page; waiting for the next save");
    const next = new DOMParser().parseFromString(text, "text/html");
    const sig = signature(next);
    if (sig.head !== base.head) return reload("<head> changed");
    if (sig.scripts !== base.scripts) return reload("a script changed");
    base = sig;
    const scroll = [window.scrollX, window.scrollY];
    const focused = document.activeElement;
    if (document.title !== next.title) document.title = next.title;
    let touched = 0;
    const morphNode = (live, want) => {
      if (live.isEqualNode(want)) return;
      if (live.nodeType !== 1) {
        if (live.nodeValue !== want.nodeValue) { live.nodeValue = want.nodeValue; touched++; }
        return;
      }
      for (const { name, value } of [...want.attributes]) {
        const current = live.getAttribute(name);
        // A URL we cache-busted after an image edit is still the file's URL: keep the fresh copy.
        if (current !== value && unbust(current) !== value) {
          live.setAttribute(name, value);
          touched++;
          // The file changed this control: show the new value (typed text is kept otherwise).
          if (name === "value" && "value" in live) live.value = value;
          if (name === "checked") live.checked = true;
        }
      }
      for (const { name } of [...live.attributes]) {
        if (!want.hasAttribute(name)) {
          live.removeAttribute(name);
          touched++;
          if (name === "checked") live.checked = false;
        }
      }
      if (live.tagName === "TEXTAREA") {
        if (live.defaultValue !== want.textContent) { live.defaultValue = want.textContent; live.value = want.textContent; touched++; }
        return;
      }
      morphChildren(live, want);
    };
    const sameKind = (a, b) => a.nodeType === b.nodeType && (a.nodeType !== 1 ||
      (a.tagName === b.tagName && (a.tagName !== "INPUT" || a.type === b.type)));
    const morphChildren = (live, want) => {
      const kids = [...live.childNodes].filter((n) => !isBeaconNode(n));
      const byId = new Map();
      for (const n of kids) if (n.nodeType === 1 && n.id) byId.set(n.id, n);
      const used = new Set();
      let index = 0;
      let previous = null;
      for (const w of [...want.childNodes]) {
        if (isBeaconNode(w)) continue;
        let match = null;
        if (w.nodeType === 1 && w.id && byId.has(w.id) && !used.has(byId.get(w.id))) {
          const candidate = byId.get(w.id);
          if (sameKind(candidate, w)) match = candidate;
        }
        // Otherwise the next unused node of the same kind, looking a few ahead (an insertion
        // before it should not rebuild everything after it).
        for (let k = index; !match && k < Math.min(index + 6, kids.length); k++) {
          const c = kids[k];
          if (!used.has(c) && sameKind(c, w) && !(c.nodeType === 1 && c.id && c.id !== w.id)) {
            if (k === index || c.isEqualNode(w)) match = c;
          }
        }
        const anchor = previous ? previous.nextSibling : live.firstChild;
        if (match) {
          used.add(match);
          index = kids.indexOf(match) + 1;
          if (match !== anchor) { live.insertBefore(match, anchor); touched++; }
          morphNode(match, w);
          previous = match;
        } else {
          const fresh = document.importNode(w, true);
          live.insertBefore(fresh, anchor);
          touched++;
          previous = fresh;
        }
      }
      for (const n of kids) if (!used.has(n)) { n.remove(); touched++; }
    };
    morphNode(document.body, next.body);
    // Stylesheets and images changed in the same batch come with the patch.
    if (data.css && data.css.length) swapStylesheets({ paths: data.css, stylesheets: data.stylesheets || [] });
    if (data.images && data.images.length) refreshImages({ paths: data.images });
    if (focused && focused !== document.activeElement && document.contains(focused)) focused.focus({ preventScroll: true });
    if (window.scrollX !== scroll[0] || window.scrollY !== scroll[1]) window.scrollTo(scroll[0], scroll[1]);
    note("patched", { path: data.path, touched });
  }

  // ---- HTML pushed by a publisher: {"selector", "html", "swap"}, swaps as htmx's hx-swap ----
  function applyFragment({ selector, html = "", swap = "inner" }) {
    let targets;
    try { targets = document.querySelectorAll(selector); } catch { return log("bad selector", selector); }
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
    note("fragment", { selector, swap, count: targets.length });
  }

  start();
})();
