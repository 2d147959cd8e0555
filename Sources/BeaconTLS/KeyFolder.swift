#if canImport(Glibc)
import Glibc
#endif

/// The file work of a folder that holds private keys: made 0700, keys written 0600 through a new
/// file renamed into place (a crash leaves the old file or the new, never half of one), and one
/// process at a time (two `beacon serve --https` started together must not make two CAs).
enum KeyFolder {
    static func make(_ folder: String) throws(TLSError) {
        var path = ""
        for part in folder.split(separator: "/", omittingEmptySubsequences: true) {
            path += "/" + part
            if mkdir(path, 0o700) != 0, errno != EEXIST {
                throw TLSError(.unwritable, "cannot make the folder \(path) for the local CA: \(String(cString: strerror(errno)))")
            }
        }
        if access(folder, W_OK | X_OK) != 0 {
            throw TLSError(.unwritable, "cannot write to \(folder), where the local CA is kept: \(String(cString: strerror(errno)))")
        }
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Runs `body` holding an exclusive lock on the folder's `.lock` file.
    static func locked<T>(_ folder: String, _ body: () throws(TLSError) -> T) throws(TLSError) -> T {
        let fd = open(folder + "/.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw TLSError(.unwritable, "cannot write to \(folder), where the local CA is kept: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    static func write(_ text: String, to path: String, secret: Bool) throws(TLSError) {
        let temporary = path + ".new"
        unlink(temporary)
        let fd = open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, secret ? 0o600 : 0o644)
        guard fd >= 0 else {
            throw TLSError(.unwritable, "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(temporary)
                throw TLSError(.unwritable, "cannot write \(temporary): \(reason)")
            }
            written += n
        }
        fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw TLSError(.unwritable, "cannot write \(path): \(reason)")
        }
    }
}
