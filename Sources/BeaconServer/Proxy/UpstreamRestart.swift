import AsyncHTTPClient
import NIOCore
import NIOPosix

/// Waits, after an edit to an app's code, until the app that answers is the restarted one.
///
/// A reloader (Werkzeug's, which `flask run --debug` uses) may keep the listening socket open
/// across the restart, so the old process can still answer for a second after the edit and no
/// connection is ever refused; waiting for "an answer" would show the old code. So a connection
/// is opened at once, which the running (old) process accepts; when that process exits, the
/// connection closes. Then the first HTTP answer comes from the new process. Django's runserver
/// closes its socket instead: its connection closes the same way, and the answer waits on
/// refused connections until the new one listens.
struct UpstreamRestart: Sendable {
    let upstream: Upstream
    let client: HTTPClient
    /// How long the old process may take to notice the edit and exit (Werkzeug polls every second).
    var noticeWithin: Duration = .seconds(3)
    /// How long the new process may take to answer (imports, migrations).
    var answerWithin: Duration = .seconds(10)

    /// Returns once the restarted app answers, or when a bound passes (an app with no reloader,
    /// or one slow to come back: the pages then refresh with whatever answers).
    func wait() async {
        guard let probe = await connect() else {
            await answered()  // nothing listens: down or restarting; wait for it to come back
            return
        }
        let closed = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                (try? await probe.closeFuture.get()) != nil
            }
            group.addTask {
                try? await Task.sleep(for: noticeWithin)
                return false
            }
            let first = await group.next() ?? false
            // The old process did not exit in time: close the probe ourselves, or the task
            // waiting on its close would keep the group (and the pipeline, and shutdown) waiting.
            if !first { probe.close(promise: nil) }
            group.cancelAll()
            return first
        }
        try? await probe.close()
        if closed { await answered() }
    }

    /// A connection the running process accepts, or nil when nothing accepts one.
    private func connect() async -> (any Channel)? {
        for address in upstream.addresses {
            let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(1))
            if let channel = try? await bootstrap.connect(host: address, port: upstream.port).get() {
                return channel
            }
        }
        return nil
    }

    /// Waits until an HTTP request to the app gets any answer, retrying refused connections.
    private func answered() async {
        let deadline = ContinuousClock.now + answerWithin
        while ContinuousClock.now < deadline, !Task.isCancelled {
            for address in upstream.addresses {
                var request = HTTPClientRequest(url: upstream.url(address, "/"))
                request.method = .HEAD
                let left = deadline - ContinuousClock.now
                if let response = try? await client.execute(request, timeout: .nanoseconds(left.nanoseconds)) {
                    _ = try? await response.body.collect(upTo: 1 << 20)
                    return
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
