extension HTMLPages {
    /// The `502` page when the app does not answer (or answers what cannot be read). Besides the
    /// live client it carries a small script of its own that asks for the same URL again, backing
    /// off up to two seconds, and reloads once the answer is anything but a 502: the page turns
    /// into the app's by itself when the app is back, whatever the client script is doing.
    static func badGateway(_ message: String) -> String {
        page(
            title: "502 — the app does not answer",
            body: "<h1>502 — the app does not answer</h1>\n<p>\(escape(message))</p>\n"
                + "<p>This page turns into the app's page by itself as soon as it answers.</p>\n"
                + "<script>\(recoveryScript)</script>",
            meta: "\n<meta name=\"beacon-status\" content=\"502\">"
        )
    }

    /// Bounded: a delay growing to 2 s, for at most about an hour, then the user reloads.
    static let recoveryScript = """
        (function () { var delay = 200, tries = 0;
          function probe() { fetch(location.href, { cache: "no-store", redirect: "manual" }).then(function (r) {
            if (r.status !== 502) { location.reload(); } else { again(); } }, again); }
          function again() { if (++tries > 2000) return; delay = Math.min(delay * 1.5, 2000); setTimeout(probe, delay); }
          setTimeout(probe, delay); })();
        """
}
