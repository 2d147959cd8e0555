#if canImport(Glibc)
import Glibc
#endif

/// Plain sockets to 127.0.0.1, shared by the test helpers.
public enum Loopback {
    /// Connects `fd` to 127.0.0.1:`port`; returns connect()'s result (0 on success).
    public static func connect(_ fd: Int32, port: Int) -> Int32 {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    /// A port on 127.0.0.1 that nothing holds, for a server a test starts on a port it names.
    ///
    /// Picked below the kernel's ephemeral range (32768 and up here) and checked by binding it:
    /// a port the kernel chose for `bind(0)` and this released at once was soon handed to another
    /// test's server or client, so the test's own server then failed to bind, or the test spoke to
    /// someone else's (a flaky `connect … errno 111`).
    public static func freePort() -> Int {
        for _ in 0..<1000 {
            let port = Int.random(in: 20_000..<32_000)
            if isFree(port) { return port }
        }
        return 0
    }

    private static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
