// Stylesheets: swapped in place, the new link loaded before the old one goes (no flash).

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
  const paths = data.paths || [data.path];
  const links = [...document.querySelectorAll('link[rel~="stylesheet"][href]')]
    .filter((l) => !l.dataset.beaconRetiring && sameOrigin(l.href));
  const wanted = matchingPaths([...(data.stylesheets || []), ...paths], links.map((l) => pathOf(l.href)));
  const targets = links.filter((l) => wanted.has(pathOf(l.href)) || importsAny(l.sheet, paths));
  for (const link of targets) {
    const next = link.cloneNode();
    const url = new URL(link.href, location.href);
    url.searchParams.set("beacon", Date.now().toString(36));
    next.href = url.href;
    link.dataset.beaconRetiring = "1";
    const retire = () => { link.remove(); reportApplied("css", data); };
    next.addEventListener("load", retire, { once: true });
    next.addEventListener("error", retire, { once: true });
    link.after(next);
  }
  if (targets.length) note("css", { paths, count: targets.length });
}

