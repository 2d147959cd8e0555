// HTML pushed by a publisher (`patch`: {"selector", "html", "swap"}), swapped as htmx's hx-swap does.
function applyPatch({ selector, html = "", swap = "inner" }) {
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
  const detail = { selector, swap, count: targets.length };
  note("patch", detail);
  // Its DOM event's name before 0.2, still fired for one release.
  document.dispatchEvent(new CustomEvent("beacon:fragment", { detail }));
}
