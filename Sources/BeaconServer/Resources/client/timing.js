// Save → applied: each live-reload event says how long its batch had waited on the server when it
// was sent (`elapsed`, from the first change); the tab adds the time until the change shows in it
// and reports the sum (POST /__beacon/applied), which the terminal and /__beacon/status show.
const RELOAD_TIMING = "beacon-reload-timing";

// Stamps an event as it arrives, so its handler can report when it is done.
function received(data) {
  if (data && typeof data.batch === "number") data.receivedAt = performance.now();
  return data;
}

function reportApplied(action, data) {
  if (!data || typeof data.receivedAt !== "number" || data.reported) return;
  data.reported = true;
  sendApplied({ batch: data.batch, action, path: data.path, ms: Math.round((data.elapsed || 0) + performance.now() - data.receivedAt) });
}

function sendApplied(report) {
  try {
    const body = JSON.stringify(report);
    if (!(navigator.sendBeacon && navigator.sendBeacon("/__beacon/applied", body))) {
      fetch("/__beacon/applied", { method: "POST", body, keepalive: true }).catch(() => {});
    }
  } catch {}
}

// A reload is applied when the new page has loaded: the event's timing waits in sessionStorage.
function rememberForReload(data) {
  if (!data || typeof data.receivedAt !== "number") return;
  try {
    const waited = (data.elapsed || 0) + performance.now() - data.receivedAt;
    sessionStorage.setItem(RELOAD_TIMING, JSON.stringify({ batch: data.batch, path: data.path, since: Date.now() - waited }));
  } catch {}
}

function reportReloadTiming() {
  let stash = null;
  try {
    stash = JSON.parse(sessionStorage.getItem(RELOAD_TIMING) || "null");
    sessionStorage.removeItem(RELOAD_TIMING);
  } catch {}
  if (!stash || typeof stash.since !== "number") return;
  const ms = Date.now() - stash.since;
  if (ms >= 0 && ms < 60000) sendApplied({ batch: stash.batch, action: "reload", path: stash.path, ms: Math.round(ms) });
}
