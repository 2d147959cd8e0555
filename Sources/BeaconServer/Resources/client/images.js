// Images: <img>, <source>, srcset, icons, inline and stylesheet background-image, fetched again in place.
// Adds (or renews) ?beacon= on a URL as written, relative or not, so the morph can still
// recognise it as the file's own URL.
function bust(url) {
  const hash = url.indexOf("#");
  const base = unbust(hash < 0 ? url : url.slice(0, hash));
  return base + (base.includes("?") ? "&" : "?") + "beacon=" + Date.now().toString(36) + (hash < 0 ? "" : url.slice(hash));
}

function refreshImages(data) {
  const files = data.paths || [data.path];
  // The image URLs the page's elements name, for matching the changed files by path (exact, else
  // the longest shared tail: an app's static folder may be served under another prefix).
  const named = [];
  for (const el of document.querySelectorAll("img[src], input[type=image][src], link[rel~=icon][href], [srcset]")) {
    const value = el.getAttribute("srcset");
    if (value) for (const part of value.split(",")) named.push(pathOf(part.trim().split(/\s+/)[0]));
    else named.push(pathOf(el.getAttribute(el.tagName === "LINK" ? "href" : "src")));
  }
  const paths = new Set([...files, ...matchingPaths(files, named)]);
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
  if (count) {
    note("image", { paths: [...paths], count });
    reportApplied("image", data);
  }
}

