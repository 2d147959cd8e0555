/// A request target turned into safe path segments: the first half of URL path → file resolution.
///
/// Pure and total, so it can be tested on a table of hostile inputs: the target is percent-decoded
/// exactly once, must be valid UTF-8 without control bytes or backslashes, and `..` segments are
/// resolved against the root so they can never climb above it.
public struct RequestPath: Equatable, Sendable {
    /// Decoded segments, none empty, none `.` or `..`.
    public var segments: [String]
    /// True when the decoded path ended in `/` (a directory was asked for).
    public var trailingSlash: Bool
    /// The raw query string after `?`, if any, kept for redirects.
    public var query: String?

    /// Why a target was refused.
    public enum Failure: Error, Equatable, Sendable {
        /// Not a path at all, bad percent-encoding, bad UTF-8, control bytes, backslashes: answer 400.
        case malformed(String)
    }

    public init(segments: [String], trailingSlash: Bool, query: String? = nil) {
        self.segments = segments
        self.trailingSlash = trailingSlash
        self.query = query
    }

    /// Parses a raw request target such as `/docs/a%20b.html?x=1`.
    public static func parse(_ target: String) -> Result<RequestPath, Failure> {
        var raw = Substring(target)
        var query: String?
        if let hash = raw.firstIndex(of: "#") { raw = raw[..<hash] }
        if let mark = raw.firstIndex(of: "?") {
            query = String(raw[raw.index(after: mark)...])
            raw = raw[..<mark]
        }
        guard raw.first == "/" else { return .failure(.malformed("the request path must start with /")) }
        guard let bytes = percentDecode(raw.utf8) else {
            return .failure(.malformed("the request path has a bad percent-escape"))
        }
        for byte in bytes {
            if byte < 0x20 || byte == 0x7F { return .failure(.malformed("the request path contains a control byte")) }
            if byte == 0x5C { return .failure(.malformed("the request path contains a backslash")) }
        }
        // Strict UTF-8: overlong forms and surrogates are rejected, not repaired.
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            return .failure(.malformed("the request path is not valid UTF-8"))
        }
        var segments: [String] = []
        let parts = decoded.split(separator: "/", omittingEmptySubsequences: true)
        for part in parts {
            switch part {
            case ".": continue
            case "..": if !segments.isEmpty { segments.removeLast() }
            default: segments.append(String(part))
            }
        }
        let last = parts.last
        let trailingSlash = decoded.hasSuffix("/") || last == "." || last == ".."
        return .success(RequestPath(segments: segments, trailingSlash: trailingSlash, query: query))
    }

    /// The normalized URL path, percent-encoded, always starting with exactly one `/`.
    public var urlPath: String {
        "/" + segments.map(Self.percentEncode).joined(separator: "/") + (trailingSlash && !segments.isEmpty ? "/" : "")
    }

    /// The decoded, normalized path with its leading slash (and trailing one for directories).
    public var decodedPath: String {
        "/" + segments.joined(separator: "/") + (trailingSlash && !segments.isEmpty ? "/" : "")
    }

    /// The path relative to the root, e.g. `docs/index.html`.
    public var relativePath: String { segments.joined(separator: "/") }

    /// True when any segment is hidden: dotfiles and dot-folders (except `.well-known`) and key
    /// material (`*.pem`, `*.key`), compared case-insensitively.
    public var isHidden: Bool {
        segments.contains(where: Self.isHiddenName)
    }

    /// The hiding rule for one path segment.
    public static func isHiddenName(_ name: String) -> Bool {
        let lower = name.lowercased()
        if lower.hasPrefix(".") { return lower != ".well-known" }
        return lower.hasSuffix(".pem") || lower.hasSuffix(".key")
    }

    static func percentDecode(_ utf8: Substring.UTF8View) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                out.append(high << 4 | low)
            } else {
                out.append(byte)
            }
        }
        return out
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }

    /// Percent-encodes everything but unreserved characters and a few safe sub-delims.
    static func percentEncode(_ segment: String) -> String {
        var out = ""
        for byte in segment.utf8 {
            switch byte {
            case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"),
                UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","),
                UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: "@"), UInt8(ascii: ":"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
