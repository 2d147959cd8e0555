import Testing

@testable import BeaconServer

@Suite struct ByteRangeTests {
    static let cases: [(String?, ByteRange)] = [
        (nil, .whole),
        ("bytes=0-9", .partial(0...9)),
        ("bytes=5-", .partial(5...99)),
        ("bytes=-10", .partial(90...99)),
        ("bytes=-1000", .partial(0...99)),
        ("bytes=90-1000", .partial(90...99)),
        ("bytes=99-99", .partial(99...99)),
        ("BYTES=1-2", .partial(1...2)),
        ("bytes= 1-2 ", .partial(1...2)),
        ("bytes=100-", .unsatisfiable),
        ("bytes=200-300", .unsatisfiable),
        ("bytes=-0", .unsatisfiable),
        ("bytes=5-1", .whole),
        ("bytes=a-b", .whole),
        ("bytes=-", .whole),
        ("bytes=0-1,5-6", .whole),
        ("items=0-1", .whole),
        ("bytes=99999999999999999999-", .whole),
        ("bytes=--5", .whole),
    ]

    @Test(arguments: cases)
    func parse(_ header: String?, _ expected: ByteRange) {
        #expect(ByteRange.parse(header, length: 100) == expected)
    }

    @Test func emptyFileHasNoSatisfiableRange() {
        #expect(ByteRange.parse("bytes=0-0", length: 0) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=-5", length: 0) == .unsatisfiable)
    }
}
