import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Writes one line to a standard stream at once (no buffering: a test or a supervisor reads it
/// while the server runs).
func writeLine(_ text: String, to descriptor: Int32) {
    var bytes = Array((text + "\n").utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if written < 0, errno == EINTR { continue }
        guard written > 0 else { return }
        bytes = bytes.dropFirst(written)
    }
}

/// Prints one line to stderr and exits non-zero: what every start-up error looks like.
func fail(_ message: String) -> Never {
    writeLine("beacon: error: \(message)", to: 2)
    exit(1)
}

extension Logger {
    /// A logger at `level` (the CLI's loggers follow --quiet).
    init(label: String, level: Logger.Level) {
        self.init(label: label)
        self.logLevel = level
    }
}
