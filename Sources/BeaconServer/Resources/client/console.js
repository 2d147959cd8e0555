// `--forward-console`: the page's uncaught errors, unhandled rejections, console.error and
// console.warn go to the terminal (POST /__beacon/console). Until `hello` says whether forwarding
// is on, reports wait here (a few); at most 100 leave one page load, the server limits the rate.
const consoleQueue = [];
let consoleSent = 0;

function forward(kind, message, where) {
  if (beacon.console === false || consoleSent >= 100) return;
  const report = { kind, message: String(message).slice(0, 4000), page: location.pathname + location.search, ...where };
  if (beacon.console !== true) { if (consoleQueue.length < 20) consoleQueue.push(report); return; }
  consoleSent++;
  try {
    const body = JSON.stringify(report);
    if (!(navigator.sendBeacon && navigator.sendBeacon("/__beacon/console", body))) {
      fetch("/__beacon/console", { method: "POST", body, keepalive: true }).catch(() => {});
    }
  } catch {}
}

// `hello` said whether forwarding is on: send or drop what waited.
function consoleReady(on) {
  beacon.console = on;
  const waiting = consoleQueue.splice(0);
  if (on) for (const report of waiting) forward(report.kind, report.message, report);
}

const describe = (value) => {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (typeof value === "string") return value;
  try { return JSON.stringify(value) ?? String(value); } catch { return String(value); }
};

// Where the caller is: the first stack frame that is not this script.
function callerLocation(stack) {
  for (const line of String(stack || "").split("\n")) {
    const m = /(https?:\/\/[^\s()]+):(\d+):(\d+)/.exec(line);
    if (m && !/\/__beacon\/client\.js$/.test(m[1])) return { source: m[1], line: +m[2], column: +m[3] };
  }
  return {};
}

window.addEventListener("error", (e) => {
  if (e.target !== window && e.target !== undefined && e.target !== null && !(e instanceof ErrorEvent)) return; // a failed <img> or <script> load
  const where = e.filename ? { source: e.filename, line: e.lineno || undefined, column: e.colno || undefined } : callerLocation(e.error && e.error.stack);
  forward("error", e.error ? describe(e.error) : e.message, where);
});
window.addEventListener("unhandledrejection", (e) => {
  forward("rejection", describe(e.reason), callerLocation(e.reason && e.reason.stack));
});
for (const level of ["error", "warn"]) {
  const original = console[level];
  console[level] = function (...args) {
    forward("console." + level, args.map(describe).join(" "), callerLocation(new Error().stack));
    return original.apply(this, args);
  };
}
