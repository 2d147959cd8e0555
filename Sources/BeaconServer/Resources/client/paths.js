// URLs and the changed files they name. Files served here have the same path as their URL; an
// app server (`serve --proxy`) may serve `static/css/site.css` at `/static/css/site.css` or at
// `/css/site.css`, so a file also matches a URL that ends the same way, the longest such tail
// winning, and by file name as a last resort.
const sameOrigin = (url) => { try { return new URL(url, location.href).origin === location.origin; } catch { return false; } };
const pathOf = (url) => { try { return decodedPath(new URL(url, location.href).pathname); } catch { return ""; } };
function decodedPath(pathname) { try { return decodeURIComponent(pathname); } catch { return pathname; } }

// How many trailing path segments two paths share.
function sharedTail(a, b) {
  const x = a.split("/").filter(Boolean);
  const y = b.split("/").filter(Boolean);
  let n = 0;
  while (n < x.length && n < y.length && x[x.length - 1 - n] === y[y.length - 1 - n]) n++;
  return n;
}

// The URL paths among `candidates` that the changed `files` name: for each file, the exact
// path, else the candidates sharing the longest tail with it (one segment: the file name).
function matchingPaths(files, candidates) {
  const found = new Set();
  for (const file of files) {
    if (candidates.includes(file)) { found.add(file); continue; }
    let best = 0;
    for (const c of candidates) best = Math.max(best, sharedTail(file, c));
    if (best > 0) for (const c of candidates) if (sharedTail(file, c) === best) found.add(c);
  }
  return found;
}
