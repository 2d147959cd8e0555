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
  // The answer to a form's POST (an app behind --proxy marks it): a GET of its URL is another page.
  const answered = document.querySelector("script[data-beacon-method]");
  if (answered) return reload(`the page answered a ${answered.dataset.beaconMethod}`);
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
    if (!/^text\/html/i.test(response.headers.get("Content-Type") || "")) return reload("the page is no longer HTML");
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
  reportApplied("patch", data);
}

