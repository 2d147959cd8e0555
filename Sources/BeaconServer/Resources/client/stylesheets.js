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

// A stylesheet's text with every URL in it (url(...) and @import "...") made absolute against the
// sheet's own URL, so it means the same in a <style> element as it did in the file. Comments and
// other strings are left as they are.
function absoluteURLs(text, base) {
  const quote = (u) => { try { return JSON.stringify(new URL(u, base).href); } catch { return null; } };
  const url = /url\(\s*(?:"([^"\\\n]*)"|'([^'\\\n]*)'|([^'"()\\\s]*))\s*\)/iy;
  const parts = [];
  let done = 0, i = 0;
  const put = (end, replacement) => { parts.push(text.slice(done, i), replacement); done = end; };
  while (i < text.length) {
    const c = text[i];
    if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 2;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== c && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      // A whole string right after @import is a URL; any other string is text.
      const inner = text.slice(i + 1, j);
      if (text[j] === c && !inner.includes("\\") && /@import\s*$/i.test(text.slice(Math.max(0, i - 64), i))) {
        const q = quote(inner);
        if (q) put(j + 1, q);
      }
      i = j + 1;
    } else if ((c === "u" || c === "U") && !/[\w-]/.test(text[i - 1] || "")) {
      url.lastIndex = i;
      const m = url.exec(text);
      const u = m && (m[1] ?? m[2] ?? m[3]);
      const q = m && u !== "" && !u.startsWith("#") && !/^data:/i.test(u) && quote(u);
      if (q) put(i + m[0].length, `url(${q})`);
      i = m ? i + m[0].length : i + 1;
    } else i++;
  }
  parts.push(text.slice(done));
  return parts.join("");
}

// Takes a link out, with the interim <style> standing in for it if there is one.
function retireLink(link) {
  if (link.beaconInterim) link.beaconInterim.remove();
  link.remove();
}

function swapStylesheets(data) {
  const paths = data.paths || [data.path];
  const texts = data.texts || {};
  const links = [...document.querySelectorAll('link[rel~="stylesheet"][href]')]
    .filter((l) => !l.dataset.beaconRetiring && sameOrigin(l.href));
  const wanted = matchingPaths([...(data.stylesheets || []), ...paths], links.map((l) => pathOf(l.href)));
  const targets = links.filter((l) => wanted.has(pathOf(l.href)) || importsAny(l.sheet, paths));
  let interim = false;
  for (const link of targets) {
    const next = link.cloneNode();
    const url = new URL(link.href, location.href);
    url.searchParams.set("beacon", Date.now().toString(36));
    next.href = url.href;
    link.dataset.beaconRetiring = "1";
    link.after(next);
    // The new text came with the event: a <style> in the link's place applies it now, and the new
    // link, loaded behind it, takes over (the sheet stays a link for the next edit, for scripts
    // that read it, and for the devtools).
    const text = Object.hasOwn(texts, pathOf(link.href)) ? texts[pathOf(link.href)] : null;
    // Alternate and disabled sheets, and pages whose CSP refuses inline styles (no sheet), swap
    // as before: when the new link has loaded.
    const style = typeof text === "string" && !link.disabled && !link.title && !/\balternate\b/i.test(link.rel)
      ? document.createElement("style") : null;
    if (style) {
      if (link.media) style.media = link.media;
      if (link.nonce) style.nonce = link.nonce;
      style.dataset.beaconInterim = "";
      style.textContent = absoluteURLs(text, link.href);
      next.before(style);
      if (!style.sheet) style.remove();
    }
    if (style && style.sheet) {
      next.beaconInterim = style;
      retireLink(link);
      interim = true;
      // Loaded: the link has the same text. Failed (the server went away, say): the <style> stays,
      // since it shows the file as it is, and goes with the link at the next edit.
      next.addEventListener("load", () => { style.remove(); next.beaconInterim = null; }, { once: true });
    } else {
      const retire = () => { retireLink(link); reportApplied("css", data); };
      next.addEventListener("load", retire, { once: true });
      next.addEventListener("error", retire, { once: true });
    }
  }
  if (interim) reportApplied("css", data);
  if (targets.length) note("css", { paths, count: targets.length });
}
