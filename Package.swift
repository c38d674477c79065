// swift-tools-version:6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "cloudbill",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "Gateway", targets: ["Gateway"]),
        .executable(name: "AuthSvc", targets: ["AuthSvc"]),
        .executable(name: "BillingSvc", targets: ["BillingSvc"]),
        .executable(name: "PaymentSvc", targets: ["PaymentSvc"]),
        .executable(name: "NotifySvc", targets: ["NotifySvc"]),
        .executable(name: "loadgen", targets: ["loadgen"]),
        .library(name: "CloudBillInstrumentation", targets: ["CloudBillInstrumentation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // C clients, wrapped once each.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // SHA-256 from OpenSSL's libcrypto, which libpq links already.
        .systemLibrary(
            name: "CLibCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // Process statistics the Swift runtime does not expose (glibc mallinfo2).
        .target(name: "CProcessStats"),

        // The one catalogue of metrics and the code that records them. The module is named
        // CloudBillInstrumentation because swift-distributed-tracing, which Hummingbird
        // depends on, already has a module called Instrumentation.
        .target(
            name: "CloudBillInstrumentation",
            dependencies: [
                "CProcessStats",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Instrumentation",
            swiftSettings: strictSettings
        ),
        // PostgreSQL through libpq and Redis through hiredis, with their pool and cache
        // metrics. The only module that imports the C clients.
        .target(
            name: "CloudBillStorage",
            dependencies: [
                "CLibPQ",
                "CHiredis",
                "CloudBillInstrumentation",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Migrations")],
            swiftSettings: strictSettings
        ),
        // Scaffolding shared by the five services: configuration, request context,
        // identity, errors, health and the metrics endpoint.
        .target(
            name: "CloudBillKit",
            dependencies: [
                "CLibCrypto",
                "CloudBillInstrumentation",
                "CloudBillStorage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),

        .executableTarget(name: "Gateway", dependencies: ["CloudBillKit"], swiftSettings: strictSettings),
        .executableTarget(name: "AuthSvc", dependencies: ["CloudBillKit"], swiftSettings: strictSettings),
        .executableTarget(name: "BillingSvc", dependencies: ["CloudBillKit"], swiftSettings: strictSettings),
        .executableTarget(name: "PaymentSvc", dependencies: ["CloudBillKit"], swiftSettings: strictSettings),
        .executableTarget(name: "NotifySvc", dependencies: ["CloudBillKit"], swiftSettings: strictSettings),
        .executableTarget(
            name: "loadgen",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "cloudbill-bench",
            dependencies: [
                "CloudBillInstrumentation",
                "CloudBillKit",
                "CloudBillStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Benchmarks/CloudBillBench",
            swiftSettings: strictSettings
        ),

        // Helpers the test suites share: exposition parsing, raw sockets, local servers.
        .target(
            name: "CloudBillTestSupport",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tests/Support",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "InstrumentationTests",
            dependencies: [
                "CloudBillTestSupport",
                "CloudBillInstrumentation",
                "CloudBillKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "StorageTests",
            dependencies: [
                "CloudBillTestSupport",
                "CloudBillStorage",
                "CloudBillInstrumentation",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "LoadgenTests",
            dependencies: [
                "loadgen",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "FaultTests",
            dependencies: [
                "CloudBillTestSupport",
                "CloudBillKit",
                "CloudBillStorage",
                "CloudBillInstrumentation",
                "AuthSvc", "BillingSvc", "PaymentSvc", "NotifySvc", "Gateway",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ServiceTests",
            dependencies: [
                "CloudBillTestSupport",
                "CloudBillStorage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
                "CloudBillKit",
                "Gateway", "AuthSvc", "BillingSvc", "PaymentSvc", "NotifySvc",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
