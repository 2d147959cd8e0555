#!/usr/bin/env python3
"""Save -> DOM updated, in a real headless Chromium (issue: instant updates).

A writer saves the page 50 times (quick: 15), stamping the wall clock in ms right after close();
the page's live client records when each patch was applied (performance.timeOrigin +
performance.now(), the same clock on one machine). Prints p50/p95/max and appends a section to
RESULTS.md (or --out FILE). Talks only to 127.0.0.1; every wait is bounded.

    BEACON_BIN=.build/release/beacon python3 benchmarks/dom_latency.py [--quick] [--css] [--saves N] [--append FILE]

With --css the page links a stylesheet and the saves are of it (`#n`'s colour changes): the figure is
when the new stylesheet has loaded and `#n` shows the new colour (a script of the benchmark's own
watches the head for the swapped-in link), not when the client started the swap.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>dom latency</title>{link}</head>
<body><h1>Save to DOM</h1><p id="n">{n}</p>{filler}</body></html>
"""
LINK = '<link rel="stylesheet" href="/style.css">'
CSS = "#n {{ color: rgb({n}, 0, 0); }}\n"
# Records #n's colour, and when, each time the client changes the page's stylesheets: a <style>
# it adds (the new text, sent with the event) applies at once; a link it swaps in, once loaded.
WATCH_CSS = """
window.__cssApplied = [];
const record = () => window.__cssApplied.push({ at: performance.now(),
  color: getComputedStyle(document.getElementById("n")).color });
new MutationObserver((ms) => { for (const m of ms) for (const node of m.addedNodes) {
  if (node.tagName === "STYLE") record();
  if (node.tagName === "LINK") node.addEventListener("load", record, { once: true });
} }).observe(document.head, { childList: true });
"""
FILLER = "".join(f"<section><h2>Part {i}</h2><p>Paragraph {i} of filler text.</p></section>" for i in range(200))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--saves", type=int)
    ap.add_argument("--append", help="append the section to this Markdown file")
    ap.add_argument("--css", action="store_true", help="save a stylesheet instead of the page")
    args = ap.parse_args()
    saves = args.saves or (15 if args.quick else 50)
    binary = os.environ.get("BEACON_BIN") or next(
        (p for p in [".build-release/release/beacon", ".build/release/beacon"] if os.path.exists(p)), None)
    if not binary:
        sys.exit("dom_latency: no beacon binary; build with `swift build -c release` or set BEACON_BIN")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "selenium"], check=True)
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

    site = tempfile.mkdtemp(prefix="beacon-dom-")
    page = os.path.join(site, "index.html")
    sheet = os.path.join(site, "style.css")
    with open(page, "w") as f:
        f.write(PAGE.format(n=0, filler=FILLER, link=LINK if args.css else ""))
    with open(sheet, "w") as f:
        f.write(CSS.format(n=0))
    server = subprocess.Popen([binary, "serve", site, "--port", "0", "--quiet"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    driver = None
    try:
        deadline = time.time() + 30
        url = None
        while time.time() < deadline and url is None:
            line = server.stdout.readline()
            m = re.search(r"at (http://127\.0\.0\.1:\d+/)", line or "")
            if m:
                url = m.group(1)
        if not url:
            sys.exit("dom_latency: beacon did not start")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.set_page_load_timeout(15)
        driver.get(url)
        end = time.time() + 10
        while time.time() < end and not driver.execute_script("return !!(window.__beacon && __beacon.connected)"):
            time.sleep(0.02)
        if args.css:
            driver.execute_script(WATCH_CSS)
        samples = []
        misses = 0
        for i in range(1, saves + 1):
            before = driver.execute_script("return __beacon.applied.filter(a => a.type === 'patched').length")
            if args.css:
                with open(sheet, "w") as f:
                    f.write(CSS.format(n=i))
            else:
                with open(page, "w") as f:
                    f.write(PAGE.format(n=i, filler=FILLER, link=""))
            stamp = time.time() * 1000.0  # right after close()
            end = time.time() + 5
            applied = None
            while time.time() < end:
                if args.css:
                    applied = driver.execute_script(
                        "const a = __cssApplied.find(e => e.color === `rgb(${arguments[0]}, 0, 0)`);"
                        "return a ? performance.timeOrigin + a.at : null;", i)
                else:
                    applied = driver.execute_script(
                        "const p = __beacon.applied.filter(a => a.type === 'patched');"
                        "return p.length > arguments[0] && document.getElementById('n').textContent === String(arguments[1])"
                        " ? performance.timeOrigin + p[p.length - 1].at : null;", before, i)
                if applied:
                    break
                time.sleep(0.005)
            if applied:
                samples.append(applied - stamp)
            else:
                misses += 1
            time.sleep(0.1)  # let the next save be its own batch
        samples.sort()
        pct = lambda p: samples[min(len(samples) - 1, int(round(p / 100 * (len(samples) - 1))))]
        line = (f"| {len(samples)} | {misses} | {pct(50):.1f} | {pct(95):.1f} | {samples[-1]:.1f} | "
                f"{statistics.mean(samples):.1f} |") if samples else "| 0 | all | | | | |"
        what = ("style.css, which the page links (`#n`'s colour changes; the time is when `#n` first shows "
                "the new colour: the client's <style> with the text the event carried is in, or the swapped-in link has loaded)" if args.css else "index.html (its `#n` text changes)")
        text = (
            f"\n## 6. Save → DOM updated in Chromium{' (CSS)' if args.css else ''}\n\n"
            f"Headless Chromium on a page with 200 sections; {saves} saves of {what}, "
            "≥ 100 ms apart, default debounce (20 ms). The writer stamps the wall clock after close(); the page's "
            "client records when the patch was applied (performance.timeOrigin + performance.now()); the script "
            "polls the page every 5 ms only to collect the figure, which does not affect it.\n\n"
            "| samples | missed | p50 ms | p95 ms | max ms | mean ms |\n|---:|---:|---:|---:|---:|---:|\n" + line + "\n"
            f"\nCommand: `BEACON_BIN={binary} python3 benchmarks/dom_latency.py{' --quick' if args.quick else ''}"
            f"{' --css' if args.css else ''}`\n")
        print(text)
        if args.append:
            with open(args.append, "a") as f:
                f.write(text)
    finally:
        if driver:
            driver.quit()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(site, ignore_errors=True)


if __name__ == "__main__":
    main()
