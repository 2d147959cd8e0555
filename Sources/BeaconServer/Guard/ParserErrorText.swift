import NIOHTTP1

/// What NIO's HTTP/1 decoder found wrong with a request, said so a person can fix the client.
enum ParserErrorText {
    static func describe(_ error: any Error) -> String {
        guard let error = error as? HTTPParserError else { return "\(error)" }
        switch error {
        case .headerOverflow: return "the request head is too large"
        case .invalidVersion: return "the HTTP version is not HTTP/1.0 or HTTP/1.1"
        case .invalidMethod: return "the method is not a known HTTP method"
        case .invalidURL: return "the request target has a byte a target cannot hold"
        case .invalidCharactersUsed, .invalidHeaderToken, .lfExpected, .invalidConstant:
            return "the request line or a header line is malformed (field names are tokens followed "
                + "directly by a colon; no line folding; lines end in CRLF)"
        case .invalidContentLength: return "Content-Length is not a single decimal number"
        case .unexpectedContentLength, .unknown:
            return "the body's length is ambiguous (Content-Length with Transfer-Encoding, or two Content-Lengths)"
        case .invalidChunkSize: return "a chunk of the chunked body has a malformed size"
        case .invalidEOFState, .closedConnection: return "the connection ended inside the request"
        default: return "the request is not valid HTTP/1.1"
        }
    }
}
