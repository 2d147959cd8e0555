import Synchronization

/// Publishes waiting to see their event come back from the log, kept outside the hub's actor: a
/// publish asks and is answered without waiting for the actor, which may be in the middle of a
/// fan-out to 19,000 streams, and the hub marks an event arrived before it starts that fan-out.
final class Arrivals: Sendable {
    private struct State {
        /// The newest id the hub has received.
        var through: EventID
        var waiting: [Int: (id: EventID, continuation: CheckedContinuation<Void, Never>)] = [:]
        var next = 0
    }

    private let state: Mutex<State>

    init(through: EventID) {
        state = Mutex(State(through: through))
    }

    /// Returns once `id` has arrived, or after `limit` (an event the log lost, a follower behind).
    func wait(for id: EventID, limit: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiter: Int? = state.withLock { state in
                guard id > state.through else { return nil }
                defer { state.next += 1 }
                state.waiting[state.next] = (id, continuation)
                return state.next
            }
            guard let waiter else { return continuation.resume() }
            Task { [weak self] in
                try? await Task.sleep(for: limit)
                self?.end(waiter)
            }
        }
    }

    /// Everything up to `id` has arrived: their publishes go on.
    func advance(to id: EventID) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard id > state.through else { return [] }
            state.through = id
            guard !state.waiting.isEmpty else { return [] }
            var ready: [CheckedContinuation<Void, Never>] = []
            for (waiter, arrival) in state.waiting where arrival.id <= id {
                state.waiting.removeValue(forKey: waiter)
                ready.append(arrival.continuation)
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    private func end(_ waiter: Int) {
        state.withLock { $0.waiting.removeValue(forKey: waiter) }?.continuation.resume()
    }
}
