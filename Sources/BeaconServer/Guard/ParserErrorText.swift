import NIOHTTP1

/// What NIO's HTTP/1 decoder found wrong with a request, said so a person can fix the client.
enum ParserErrorText {
    static func describe(_ error: any Error) -> String {
        guard let error = error as? HTTPParserError else { return "\(error)" }
        switch error {
        case .headerOverflow: return "the request head is too large"
        // Also what llhttp says of a request line ending in a bare LF.
        case .invalidVersion: return "the request line must end in the HTTP version (HTTP/1.0 or HTTP/1.1) and CRLF"
        case .invalidMethod: return "the method is not a known HTTP method"
        case .invalidURL: return "the request target must be a path such as /index.html, of bytes a target can hold"
        case .invalidCharactersUsed, .invalidHeaderToken, .lfExpected, .invalidConstant:
            return "the request line or a header line is malformed (field names are tokens followed "
                + "directly by a colon; no line folding; lines end in CRLF)"
        case .invalidContentLength:
            return "Content-Length must be a single decimal number, and cannot come with Transfer-Encoding"
        case .unexpectedContentLength:
            return "the body's length is ambiguous (Content-Length with Transfer-Encoding, or two Content-Lengths)"
        case .unknown:
            // NIO's name for llhttp's errors it has no case for: a CR missing before a LF, and a
            // Transfer-Encoding llhttp refuses, are the ones a request's bytes can cause.
            return "the request is malformed: every line ends in CRLF, and Transfer-Encoding must end in "
                + "chunked and cannot come with Content-Length"
        case .invalidChunkSize: return "a chunk of the chunked body has a malformed size"
        case .invalidEOFState, .closedConnection: return "the connection ended inside the request"
        default: return "the request is not valid HTTP/1.1"
        }
    }
}
