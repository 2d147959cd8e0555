import EventHub
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Save → applied, as each tab measured it: from a batch's first change (the server's part, sent
/// with the event as `elapsed`) to the change showing in the tab (the tab's part), reported by the
/// page client to `POST /__beacon/applied`.
///
/// Keeps the last reports per action for `/__beacon/status` (p50, p95, max), and prints one line per
/// batch once its tabs have reported: `index.html → 2 tabs patched in 24 ms` (the slowest tab).
actor AppliedTimes<C: Clock> where C.Duration == Duration {
    enum Action: String, CaseIterable, Sendable {
        case patch, css, image, reload

        var pastTense: String {
            switch self {
            case .patch: "patched"
            case .css: "restyled"
            case .image: "had images swapped"
            case .reload: "reloaded"
            }
        }
    }

    struct Report: Equatable, Sendable {
        var batch: Int
        var action: Action
        var path: String
        var milliseconds: Int
    }

    /// p50, p95 and max of one action's recent reports.
    struct Summary: Encodable, Equatable {
        let count: Int
        let p50: Int
        let p95: Int
        let max: Int
    }

    private let clock: C
    private let print: @Sendable (String) -> Void
    private var samples: [Action: [Int]] = [:]
    /// Reports of batches whose line is not printed yet, and when each batch's first came.
    private var gathering: [Int: [Report]] = [:]
    /// Reports kept per action for the figures.
    static var kept: Int { 1000 }
    /// How long a batch's line waits for more of its tabs.
    let gatherFor: Duration

    init(clock: C, gatherFor: Duration = .milliseconds(300), print: @escaping @Sendable (String) -> Void) {
        self.clock = clock
        self.gatherFor = gatherFor
        self.print = print
    }

    func record(_ report: Report) {
        samples[report.action, default: []].append(report.milliseconds)
        if samples[report.action]!.count > Self.kept { samples[report.action]!.removeFirst() }
        if gathering[report.batch] == nil {
            let (clock, deadline, batch) = (self.clock, self.clock.now.advanced(by: gatherFor), report.batch)
            Task {
                try? await clock.sleep(until: deadline, tolerance: nil)
                self.printBatch(batch)
            }
        }
        // A batch in progress bounds its memory too: a flood of one batch's reports keeps the first few.
        if gathering[report.batch, default: []].count < 100 { gathering[report.batch, default: []].append(report) }
        if gathering.count > 100, let oldest = gathering.keys.min() { printBatch(oldest) }
    }

    private func printBatch(_ batch: Int) {
        guard let reports = gathering.removeValue(forKey: batch), let first = reports.first else { return }
        var byAction: [Action: [Report]] = [:]
        for report in reports { byAction[report.action, default: []].append(report) }
        for action in Action.allCases {
            guard let done = byAction[action] else { continue }
            let slowest = done.map(\.milliseconds).max() ?? 0
            let name = first.path.split(separator: "/").last.map(String.init) ?? first.path
            print(
                "\(LogText.escaped(name)) → \(done.count) tab\(done.count == 1 ? "" : "s") \(action.pastTense) in \(slowest) ms"
            )
        }
    }

    /// The figures per action, for `/__beacon/status`.
    func summaries() -> [String: Summary] {
        var out: [String: Summary] = [:]
        for (action, values) in samples where !values.isEmpty {
            let sorted = values.sorted()
            func percentile(_ p: Double) -> Int { sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)] }
            out[action.rawValue] = Summary(count: sorted.count, p50: percentile(0.5), p95: percentile(0.95), max: sorted.last!)
        }
        return out
    }
}

extension AppliedTimes.Report {
    /// A tab's report in a JSON body, or what is wrong with it.
    static func parse(_ bytes: [UInt8]) throws(APIError) -> Self {
        do {
            try JSONSyntax.validate(bytes)  // depth and syntax checked before anything is decoded
        } catch {
            throw APIError(status: .badRequest, code: "invalid_json", message: "the body is not JSON: \(error.message)")
        }
        guard case .object(let fields) = JSONValue.read(bytes) else {
            throw APIError(status: .badRequest, code: "invalid_json", message: "send a JSON object")
        }
        if let unknown = fields.keys.sorted().first(where: { !["batch", "action", "path", "ms"].contains($0) }) {
            throw APIError(
                status: .badRequest,
                code: "unknown_field",
                message: "unknown field \(unknown.debugDescription); use batch, action, path and ms",
                field: unknown
            )
        }
        func count(_ name: String, upTo limit: Double) throws(APIError) -> Int {
            guard case .number(let number) = fields[name], number >= 0, number <= limit, number.rounded() == number else {
                throw APIError.badRequest(field: name, "\(name) must be a whole number from 0 to \(Int(limit))")
            }
            return Int(number)
        }
        guard case .string(let actionName) = fields["action"], let action = AppliedTimes.Action(rawValue: actionName) else {
            throw APIError.badRequest(
                field: "action",
                "action must be one of \(AppliedTimes.Action.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        guard case .string(let path) = fields["path"], path.hasPrefix("/"), path.utf8.count <= 4096 else {
            throw APIError.badRequest(field: "path", "path must be the changed file's URL path, starting with /")
        }
        return Self(
            batch: try count("batch", upTo: 1e12),
            action: action,
            path: path,
            milliseconds: try count("ms", upTo: 600_000)
        )
    }
}
