// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "HubSync",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "hubsync", targets: ["hubsync"]),
        .library(name: "HubSyncStore", targets: ["HubSyncStore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    ],
    targets: [
        // System libraries: a missing Debian package shows at the first build, with the hint below.
        .systemLibrary(name: "CHubSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CHubAvahi", pkgConfig: "avahi-client", providers: [.apt(["libavahi-client-dev"])]),
        .systemLibrary(name: "CHubZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CHubZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CHubMalloc"),
        .systemLibrary(name: "CHubSQLite", providers: [.apt(["libsqlite3-dev"])]),

        .target(name: "HubSyncBase"),
        .target(name: "HubSyncCrypto", dependencies: ["HubSyncBase", "CHubSodium"]),
        .target(name: "HubSyncCore", dependencies: ["HubSyncBase", "HubSyncCrypto"]),
        .target(name: "HubSyncStore", dependencies: [
            "HubSyncBase", "HubSyncCore", "HubSyncCrypto", "CHubSQLite",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "HubSyncHousehold", dependencies: ["HubSyncBase", "HubSyncCrypto"]),
        .target(name: "HubSyncDiscovery", dependencies: ["HubSyncBase", "HubSyncCrypto", "CHubAvahi"]),
        .target(name: "HubSyncNet", dependencies: [
            "HubSyncBase", "HubSyncStore", "HubSyncCore", "HubSyncCrypto",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "HubSyncAgent", dependencies: [
            "HubSyncBase", "HubSyncNet", "HubSyncDiscovery", "HubSyncHousehold", "HubSyncStore", "HubSyncCore", "HubSyncCrypto", "HubSyncBackup",
            "HubSyncMigration", "HubSyncS3", "CHubMalloc",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            // /metrics: swift-metrics' types, kept by a Prometheus registry of each agent's own.
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], resources: [
            // The dashboard's page, served at / (Dashboard+Routes.swift): compiled into the binary,
            // so an installed `hubsync` needs no files beside it.
            .embedInCode("Dashboard/index.html"), .embedInCode("Dashboard/dashboard.css"), .embedInCode("Dashboard/app.js"),
            .embedInCode("Dashboard/api.js"), .embedInCode("Dashboard/tabs.js"), .embedInCode("Dashboard/icon.svg"),
        ]),
        // The S3 client: SigV4 signing on swift-crypto, requests over async-http-client.
        .target(name: "HubSyncS3", dependencies: [
            "HubSyncBase",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "HubSyncBackup", dependencies: [
            "HubSyncBase", "HubSyncNet", "HubSyncS3", "HubSyncHousehold", "HubSyncStore", "HubSyncCore", "HubSyncCrypto", "CHubZstd", "CHubSodium",
        ]),
        // Importers for other tools' files: character cards (JSON, PNG, CHARX) and chat exports.
        .target(name: "HubSyncMigration", dependencies: ["HubSyncCore", "HubSyncCrypto", "CHubZlib"]),
        .executableTarget(name: "hubsync", dependencies: [
            "HubSyncBase", "HubSyncAgent", "HubSyncMigration", "HubSyncBackup", "HubSyncS3", "HubSyncHousehold", "HubSyncStore", "HubSyncCore", "HubSyncCrypto", "CHubAvahi", "CHubZstd", "CHubMalloc",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "hubsync-bench", dependencies: [
            "HubSyncBase",
            "HubSyncStore", "HubSyncCore", "HubSyncCrypto", "HubSyncAgent", "HubSyncBackup", "HubSyncHousehold", "HubSyncMigration", "HubSyncS3", "CHubZstd",
        ]),

        // What every test target shares: temporary directories, the seeded generator, waiting,
        // child processes and agents.
        .target(name: "HubSyncTestSupport", dependencies: ["HubSyncBase", "HubSyncCore"], path: "Tests/TestSupport"),
        .testTarget(name: "HubSyncBaseTests", dependencies: ["HubSyncBase", "HubSyncTestSupport"]),
        .testTarget(name: "HubSyncCryptoTests", dependencies: ["HubSyncCrypto", "HubSyncHousehold", "HubSyncTestSupport"]),
        .testTarget(name: "HubSyncCoreTests", dependencies: ["HubSyncCore", "HubSyncCrypto", "HubSyncTestSupport"]),
        .testTarget(name: "HubSyncHouseholdTests", dependencies: ["HubSyncHousehold", "HubSyncBase", "HubSyncCrypto", "HubSyncTestSupport"]),
        .testTarget(name: "HubSyncStoreTests", dependencies: ["HubSyncStore", "HubSyncCore", "HubSyncCrypto", "HubSyncTestSupport"]),
        .testTarget(name: "HubSyncBackupTests", dependencies: ["HubSyncBackup", "HubSyncHousehold", "HubSyncStore", "HubSyncCore", "HubSyncCrypto", "HubSyncTestSupport"]),
        .testTarget(name: "HubSyncS3Tests", dependencies: ["HubSyncS3", "HubSyncBase", "HubSyncTestSupport"]),
        .testTarget(name: "CLITests", dependencies: [
            "HubSyncBase", "HubSyncCore", "HubSyncAgent", "HubSyncBackup", "HubSyncCrypto", "HubSyncHousehold", "HubSyncTestSupport",
            // Only to plant forged audit entries in a stopped device's store (AuditJournalTests).
            "HubSyncStore",
            // Only to damage a store behind the agents' backs, as a lost disk block would.
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .testTarget(name: "HubSyncAgentTests", dependencies: [
            "HubSyncAgent", "HubSyncBase", "HubSyncCore", "HubSyncCrypto", "HubSyncHousehold", "HubSyncStore", "HubSyncTestSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "HubSyncNetTests", dependencies: [
            "HubSyncNet", "HubSyncCore", "HubSyncCrypto", "HubSyncStore", "HubSyncTestSupport",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "HubSyncMigrationTests", dependencies: ["HubSyncMigration", "HubSyncCore", "HubSyncTestSupport", "CHubZlib"]),
        .testTarget(name: "HubSyncDiscoveryTests", dependencies: ["HubSyncDiscovery", "HubSyncCrypto", "HubSyncTestSupport"]),
        // Real agents in network namespaces with real avahi-daemons (root only; they say why they skip).
        .testTarget(name: "SystemTests", dependencies: ["HubSyncCore", "HubSyncTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
