// The page: its state, how it names itself, and the helpers every handler shares.
if (window.__beacon) return; // included twice: run once
const beacon = (window.__beacon = {
  server: null, connected: false, received: 0, transport: null,
  page: pageKey(location.pathname), applied: [], checked: 0, // checked: page updates considered (applied or not)
  overlays: true, console: undefined, // console: forwarding on or off once `hello` says
  nonce: (document.currentScript && document.currentScript.nonce) || "", // the page's CSP nonce, if it gave us one
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

