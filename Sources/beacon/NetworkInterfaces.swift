#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The URLs other machines can use when Beacon listens beyond loopback.
enum NetworkInterfaces {
    static func reachableURLs(boundHost: String, port: Int, scheme: String) -> [String] {
        guard boundHost == "0.0.0.0" || boundHost == "::" || boundHost == "[::]" else {
            let shown = boundHost.contains(":") && !boundHost.hasPrefix("[") ? "[\(boundHost)]" : boundHost
            return ["\(scheme)://\(shown):\(port)/"]
        }
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var urls: [String] = []
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else {
                continue
            }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            guard
                getnameinfo(
                    address,
                    socklen_t(MemoryLayout<sockaddr_in>.size),
                    &host,
                    socklen_t(host.count),
                    nil,
                    0,
                    NI_NUMERICHOST
                ) == 0
            else { continue }
            let text = String(cString: host)
            if !text.hasPrefix("127.") { urls.append("\(scheme)://\(text):\(port)/") }
        }
        return urls
    }
}
