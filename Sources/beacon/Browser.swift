import Foundation
import Logging

/// Opens a URL in the desktop's browser for `--open`.
enum Browser {
    static func open(_ url: String, logger: Logger) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["xdg-open", url]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            logger.warning("could not open a browser (xdg-open): \(error.localizedDescription); open \(url) yourself")
        }
    }
}
