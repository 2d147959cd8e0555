// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "beacon",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "beacon", targets: ["beacon"]),
        .library(name: "BeaconServer", targets: ["BeaconServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        // `beacon publish` speaks HTTP (and HTTPS) through it: no FoundationNetworking, which a
        // static binary cannot carry without libcurl. The proxy to an app server will use it too.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // The proxy decodes an app's gzip/deflate answers (when it ignored `Accept-Encoding: identity`)
        // to inject the client script into them, as a stream.
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        // Private channels verify (and `beacon token` signs) JWTs with it: HMAC, RSA, ECDSA and EdDSA on
        // swift-crypto, the algorithm pinned by configuration — not a JWT parser of our own.
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        // jwt-kit's own crypto, named only for the tests: they make fresh RSA, P-256 and Ed25519 keys.
        .package(url: "https://github.com/apple/swift-crypto.git", "4.1.0"..<"5.0.0"),
        // `--https`: the local CA and its server certificates are made in process (X.509 on
        // swift-asn1 and swift-crypto), served through NIO's TLS (BoringSSL) with ALPN, and HTTP/2
        // through NIO's. async-http-client already builds swift-nio-ssl and swift-nio-http2,
        // jwt-kit already builds swift-certificates: no new code to compile.
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        // `/__beacon/metrics`: swift-metrics' handles, Prometheus's text format.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // `serve`'s settings from BEACON_* variables and beacon.json (Hummingbird already builds it).
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        // The only C: a module map over libinotifytools (Debian: libinotifytools0-dev).
        .systemLibrary(
            name: "CInotifyTools",
            providers: [.apt(["libinotifytools0-dev"])]
        ),
        // Watching a tree for changes; value types plus the inotify-backed watcher.
        .target(
            name: "FileWatching",
            dependencies: [
                "CInotifyTools",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Events, SSE encoding, history and the in-process hub. No HTTP here.
        .target(
            name: "EventHub",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio")
            ],
            swiftSettings: swiftSettings
        ),
        // File changes → batched → classified → hub events.
        .target(
            name: "LiveReload",
            dependencies: [
                "FileWatching",
                "EventHub",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Private channels: channel patterns, grants and the JWTs that carry them. No HTTP here.
        .target(
            name: "BeaconAuth",
            dependencies: [
                "EventHub",
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        // TLS material: the local certificate authority, server certificates, the user's own pair.
        .target(
            name: "BeaconTLS",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP: static files, injection, the event stream, the client script.
        .target(
            name: "BeaconServer",
            dependencies: [
                "BeaconAuth",
                "BeaconTLS",
                "EventHub",
                "FileWatching",
                "LiveReload",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHTTPTypesHTTP2", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // `serve --proxy`: the upstream side of the proxy to an app server (streaming both ways,
                // pooled connections, a connect timeout) and the decoding of its compressed HTML.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "BeaconRedis",
            ],
            resources: [
                // The page client, one file per job, joined into one script by ClientScript.
                .embedInCode("Resources/client/transport.js"),
                .embedInCode("Resources/client/worker.js"),
                .embedInCode("Resources/client/page.js"),
                .embedInCode("Resources/client/paths.js"),
                .embedInCode("Resources/client/stylesheets.js"),
                .embedInCode("Resources/client/images.js"),
                .embedInCode("Resources/client/morph.js"),
                .embedInCode("Resources/client/patch.js"),
                .embedInCode("Resources/client/overlay.js"),
                .embedInCode("Resources/client/console.js"),
                .embedInCode("Resources/client/timing.js"),
                .embedInCode("Resources/client/dispatch.js"),
                .embedInCode("Resources/client/start.js"),
                .embedInCode("Resources/client/main.js"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["BuildVersion"]
        ),
        // `git describe` at build time, as the version the binary reports.
        .plugin(name: "BuildVersion", capability: .buildTool()),
        // Scale-out through Redis: a small RESP client on SwiftNIO (no Swift Redis client is available here).
        .target(
            name: "BeaconRedis",
            dependencies: [
                "EventHub",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // rediss://: TLS to hosted Redis services.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "beacon",
            dependencies: [
                "BeaconServer",
                "EventHub",
                "FileWatching",
                "LiveReload",
                "BeaconRedis",
                "BeaconAuth",
                "BeaconTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            resources: [
                // The starter site `beacon init` writes (also served by `make run` as site-template/).
                .embedInCode("Resources/site-template/index.html"),
                .embedInCode("Resources/site-template/about.html"),
                .embedInCode("Resources/site-template/style.css"),
                .embedInCode("Resources/site-template/app.js"),
                .embedInCode("Resources/site-template/logo.svg"),
                .embedInCode("Resources/site-template/demos/clock.html"),
                .embedInCode("Resources/site-template/demos/chat.html"),
                .embedInCode("Resources/site-template/demos/progress.html"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "FileWatchingTests", dependencies: ["FileWatching"], swiftSettings: swiftSettings),
        // Test helpers shared by the test targets (a spec-following SSE parser, a real redis-server, a fake watcher).
        .target(
            name: "BeaconTestSupport",
            dependencies: ["FileWatching", "EventHub"],
            path: "Tests/BeaconTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventHubTests",
            dependencies: ["EventHub", "BeaconTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LiveReloadTests",
            dependencies: ["LiveReload", "BeaconTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeaconAuthTests",
            dependencies: [
                "BeaconAuth",
                "EventHub",
                // Tokens the tests sign themselves (tampered, `none`, algorithm confusion) and fresh keys.
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeaconTLSTests",
            dependencies: [
                "BeaconTLS",
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeaconRedisTests",
            dependencies: ["BeaconRedis", "EventHub", "BeaconTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BeaconServerTests",
            dependencies: [
                "BeaconServer",
                "BeaconAuth",
                "BeaconTestSupport",
                "EventHub",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
