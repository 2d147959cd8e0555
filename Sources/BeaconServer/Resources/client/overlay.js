// What the server wants the person at the page to see: a failed build (a full-page overlay) and
// files the page asked for that are missing (small notes). Each lives in a shadow root, so the
// site's CSS cannot reach it nor it the site; text goes in only as textContent (never markup),
// and styles through a constructed stylesheet, which a Content-Security-Policy does not block.
const OVERLAY_CSS = `
:host { all: initial; }
.backdrop { position: fixed; inset: 0; z-index: 2147483647; background: rgba(20, 20, 24, .72);
  display: flex; align-items: flex-start; justify-content: center; padding: 6vh 4vw; box-sizing: border-box;
  font: 14px/1.45 ui-sans-serif, system-ui, sans-serif; color: #eee; }
.box { background: #1e1e24; border-top: 4px solid #e5484d; border-radius: 6px; max-width: 1000px; width: 100%;
  max-height: 86vh; overflow: auto; box-shadow: 0 12px 40px rgba(0,0,0,.5); padding: 18px 22px; }
h1 { font-size: 17px; margin: 0 0 6px; color: #ff8589; font-weight: 600; }
.command { font-family: ui-monospace, monospace; color: #ccc; margin-bottom: 12px; }
pre { font: 12.5px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap; word-break: break-word;
  background: #111114; padding: 12px; border-radius: 4px; margin: 0; }
.hint { margin-top: 10px; color: #999; font-size: 12px; }
.notes { position: fixed; right: 12px; bottom: 12px; z-index: 2147483646; display: flex; flex-direction: column;
  gap: 6px; font: 13px/1.4 ui-sans-serif, system-ui, sans-serif; }
.note { background: #2a2320; color: #f5d9c6; border-left: 3px solid #f5a524; border-radius: 4px; padding: 6px 10px;
  box-shadow: 0 4px 14px rgba(0,0,0,.3); display: flex; gap: 10px; align-items: center; max-width: 60vw; }
.note code { font-family: ui-monospace, monospace; word-break: break-all; }
.note button { all: unset; cursor: pointer; color: #f5a524; font-size: 16px; line-height: 1; }
.b { font-weight: bold; } .d { opacity: .7; } .i { font-style: italic; } .u { text-decoration: underline; }
.c30, .c90 { color: #8b8b8b; } .c31, .c91 { color: #ff6b6b; } .c32, .c92 { color: #5fd787; }
.c33, .c93 { color: #f5c542; } .c34, .c94 { color: #6ca7ff; } .c35, .c95 { color: #d68cff; }
.c36, .c96 { color: #4fd6e0; } .c37, .c97 { color: #f2f2f2; }
`;

// A host element with a shadow root, styled; `name` tells hosts apart (tests look for them too).
function shadowHost(name) {
  const host = document.createElement(name);
  const root = host.attachShadow({ mode: "open" });
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(OVERLAY_CSS);
    root.adoptedStyleSheets = [sheet];
  } catch {
    const style = document.createElement("style");
    if (beacon.nonce) style.nonce = beacon.nonce; // the page's CSP nonce, from our own script tag
    style.textContent = OVERLAY_CSS;
    root.append(style);
  }
  (document.body || document.documentElement).append(host);
  return { host, root };
}

const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

// Terminal output with its colours: SGR escapes (`ESC[1;31m`…) become classes; any other escape
// sequence is dropped. Text stays text.
function ansiToNodes(text) {
  const out = document.createDocumentFragment();
  let classes = new Set();
  const pattern = /\x1b\[([0-9;]*)([A-Za-z])|\x1b[@-_]?/g;
  let at = 0;
  const push = (chunk) => {
    if (!chunk) return;
    if (classes.size === 0) out.append(chunk);
    else out.append(el("span", [...classes].join(" "), chunk));
  };
  for (let m; (m = pattern.exec(text)); ) {
    push(text.slice(at, m.index));
    at = pattern.lastIndex;
    if (m[2] !== "m") continue;
    const codes = (m[1] || "0").split(";").map(Number);
    for (const code of codes) {
      if (code === 0) classes = new Set();
      else if (code === 1) classes.add("b");
      else if (code === 2) classes.add("d");
      else if (code === 3) classes.add("i");
      else if (code === 4) classes.add("u");
      else if (code === 22) { classes.delete("b"); classes.delete("d"); }
      else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) {
        for (const c of [...classes]) if (/^c\d/.test(c)) classes.delete(c);
        classes.add("c" + code);
      } else if (code === 39) for (const c of [...classes]) if (/^c\d/.test(c)) classes.delete(c);
    }
  }
  push(text.slice(at));
  return out;
}

let buildOverlay = null;

// `build` with ok false: the overlay (replacing one already shown); ok true: away with it.
function showBuild(report) {
  hideBuild();
  if (!report || report.ok || !beacon.overlays) return;
  const { host, root } = shadowHost("beacon-build-error");
  const backdrop = el("div", "backdrop");
  const box = el("div", "box");
  box.setAttribute("role", "alertdialog");
  box.append(el("h1", "", "Build failed: " + (report.reason || "")));
  box.append(el("div", "command", "$ " + (report.command || "")));
  const pre = el("pre");
  pre.append(ansiToNodes(String(report.output || "(no output)")));
  box.append(pre);
  box.append(el("div", "hint", "Esc or a click closes this; the next successful build clears it by itself."));
  backdrop.append(box);
  root.append(backdrop);
  backdrop.addEventListener("click", hideBuild);
  buildOverlay = host;
  note("build-error", { reason: report.reason });
}

function hideBuild() {
  if (!buildOverlay) return;
  buildOverlay.remove();
  buildOverlay = null;
}

document.addEventListener("keydown", (e) => { if (e.key === "Escape") hideBuild(); });

let notes = null;
const notedMissing = new Set();
let scannedMissing = false;

// Files that failed before the stream was open (a page's stylesheets and scripts come before it):
// when the browser's resource timing shows a failure, or cannot say, the server is asked which.
// Later ones come as `missing` events.
function missingBeforeHello() {
  if (scannedMissing || !beacon.overlays || !window.performance || !performance.getEntriesByType) return;
  scannedMissing = true;
  const failed = performance.getEntriesByType("resource").some((entry) => {
    try {
      const url = new URL(entry.name);
      if (url.origin !== location.origin || url.pathname.startsWith("/__beacon/") || url.pathname === "/favicon.ico") return false;
    } catch { return false; }
    // 0: no status to be read (a stylesheet refused for its type, say); undefined: not supported.
    return entry.responseStatus === undefined || entry.responseStatus === 0 || entry.responseStatus >= 400;
  });
  if (!failed) return;
  fetch("/__beacon/missing?page=" + encodeURIComponent(beacon.page))
    .then((answer) => answer.json())
    .then((data) => { for (const path of data.missing || []) showMissing({ path, page: beacon.page }); })
    .catch(() => {});
}

// `missing`: a small note on the page that asked, not a modal; × closes it. At most five at once.
function showMissing(data) {
  if (data.page !== beacon.page || !beacon.overlays || notedMissing.has(data.path)) return;
  notedMissing.add(data.path);
  if (!notes || !notes.host.isConnected) {
    notes = shadowHost("beacon-notes");
    notes.list = el("div", "notes");
    notes.root.append(notes.list);
  }
  const item = el("div", "note");
  item.append("404 ", el("code", "", String(data.path)), " — this page asked for it and it is not there");
  const close = el("button", "", "×");
  close.setAttribute("aria-label", "close");
  close.addEventListener("click", () => item.remove());
  item.append(close);
  notes.list.append(item);
  while (notes.list.children.length > 5) notes.list.firstChild.remove();
  note("missing", { path: data.path });
}
