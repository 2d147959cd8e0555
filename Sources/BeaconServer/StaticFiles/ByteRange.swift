/// A `Range: bytes=…` header, parsed against a representation of known length.
public enum ByteRange: Equatable, Sendable {
    /// Serve this slice with 206.
    case partial(ClosedRange<Int>)
    /// No byte of the file is in range: 416.
    case unsatisfiable
    /// Absent, malformed or a multi-range set: serve the whole file with 200 (RFC 9110 lets a server ignore Range).
    case whole

    /// Parses `header` for a representation of `length` bytes.
    public static func parse(_ header: String?, length: Int) -> ByteRange {
        guard let header else { return .whole }
        let trimmed = header.trimmingSpaces()
        guard trimmed.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = trimmed.dropFirst(6).trimmingSpaces()
        // Multiple ranges are answered with the whole file: simple, and immune to range-flood abuse.
        guard !spec.contains(",") else { return .whole }
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash].trimmingSpaces()
        let last = spec[spec.index(after: dash)...].trimmingSpaces()
        if first.isEmpty {
            // Suffix range: the last N bytes.
            guard let suffix = digits(last) else { return .whole }
            guard suffix > 0, length > 0 else { return .unsatisfiable }
            return .partial(max(0, length - suffix)...(length - 1))
        }
        guard let start = digits(first) else { return .whole }
        guard start < length else { return .unsatisfiable }
        if last.isEmpty { return .partial(start...(length - 1)) }
        guard let end = digits(last), end >= start else { return .whole }
        return .partial(start...min(end, length - 1))
    }

    private static func digits(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)
    }
}

extension StringProtocol {
    func trimmingSpaces() -> Substring {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return Substring(s)
    }
}
