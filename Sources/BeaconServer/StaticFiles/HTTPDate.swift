#if canImport(Glibc)
import Glibc
#endif

/// HTTP-dates: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) written for Last-Modified and Date,
/// and all three forms read for If-Modified-Since.
enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return
            "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    private static let longDays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    /// Parses an HTTP-date (RFC 9110 §5.6.7) to seconds since 1970: IMF-fixdate
    /// (`Sun, 06 Nov 1994 08:49:37 GMT`), or one of the two obsolete forms a recipient must still
    /// accept, RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`).
    /// Anything else — another layout, extra text, a day or time out of range — is nil: an invalid
    /// date is ignored, never guessed at (§13.1.3). `now` places RFC 850's two-digit years.
    static func parse(_ text: String, now: Int = Int(time(nil))) -> Int? {
        let bytes = Array(text.utf8)
        if bytes.count == 29, bytes[3] == UInt8(ascii: ","),
            days.contains(String(decoding: bytes[0..<3], as: UTF8.self))
        {
            // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
            guard bytes[4] == 0x20, bytes[7] == 0x20, bytes[11] == 0x20, bytes[16] == 0x20, bytes[25] == 0x20,
                String(decoding: bytes[26...], as: UTF8.self) == "GMT",
                let day = number(bytes[5..<7]), let month = month(bytes[8..<11]), let year = number(bytes[12..<16])
            else { return nil }
            return seconds(year: year, month: month, day: day, clock: bytes[17..<25])
        }
        if let comma = bytes.firstIndex(of: UInt8(ascii: ",")),
            longDays.contains(String(decoding: bytes[..<comma], as: UTF8.self))
        {
            // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
            let rest = Array(bytes[(comma + 1)...])
            guard rest.count == 23, rest[0] == 0x20, rest[3] == UInt8(ascii: "-"), rest[7] == UInt8(ascii: "-"),
                rest[10] == 0x20, rest[19] == 0x20, String(decoding: rest[20...], as: UTF8.self) == "GMT",
                let day = number(rest[1..<3]), let month = month(rest[4..<7]), let twoDigits = number(rest[8..<10])
            else { return nil }
            // §5.6.7: a year more than 50 years ahead is the latest past year with those digits.
            let thisYear = year(of: now)
            var year = thisYear - thisYear % 100 + twoDigits
            if year > thisYear + 50 { year -= 100 }
            return seconds(year: year, month: month, day: day, clock: rest[11..<19])
        }
        if bytes.count == 24, days.contains(String(decoding: bytes[0..<3], as: UTF8.self)) {
            // asctime: `Sun Nov  6 08:49:37 1994` (a one-digit day after a space)
            guard bytes[3] == 0x20, bytes[7] == 0x20, bytes[10] == 0x20, bytes[19] == 0x20,
                let month = month(bytes[4..<7]), let year = number(bytes[20..<24])
            else { return nil }
            let day = bytes[8] == 0x20 ? number(bytes[9..<10]) : number(bytes[8..<10])
            guard let day else { return nil }
            return seconds(year: year, month: month, day: day, clock: bytes[11..<19])
        }
        return nil
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> Int? {
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return digits.isEmpty ? nil : value
    }

    private static func month(_ name: ArraySlice<UInt8>) -> Int? {
        months.firstIndex(of: String(decoding: name, as: UTF8.self))
    }

    private static func year(of seconds: Int) -> Int {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return Int(parts.tm_year) + 1900
    }

    /// `08:49:37` on that day, or nil when any part is out of range (the 31st of November, 25:00).
    private static func seconds(year: Int, month: Int, day: Int, clock: ArraySlice<UInt8>) -> Int? {
        let base = clock.startIndex
        guard clock.count == 8, clock[base + 2] == UInt8(ascii: ":"), clock[base + 5] == UInt8(ascii: ":"),
            let hour = number(clock[base..<base + 2]), let minute = number(clock[base + 3..<base + 5]),
            let second = number(clock[base + 6..<base + 8]),
            hour < 24, minute < 60, second <= 60, day >= 1, day <= 31, year >= 1970
        else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let value = timegm(&parts)
        // timegm normalises the 31st of November to the 1st of December: such a date is invalid.
        guard value >= 0, parts.tm_mday == Int32(day), parts.tm_mon == Int32(month) else { return nil }
        return Int(value)
    }
}
