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
    ],
    targets: [
        // System libraries: a missing Debian package shows at the first build, with the hint below.
        .systemLibrary(name: "CHubSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CHubAvahi", pkgConfig: "avahi-client", providers: [.apt(["libavahi-client-dev"])]),
        .systemLibrary(name: "CHubZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),

        .target(name: "HubSyncBase"),
        .target(name: "HubSyncCrypto", dependencies: ["HubSyncBase", "CHubSodium"]),
        .target(name: "HubSyncCore", dependencies: ["HubSyncBase", "HubSyncCrypto"]),
        .target(name: "HubSyncStore", dependencies: [
            "HubSyncBase", "HubSyncCore", "HubSyncCrypto",
            .product(name: "GRDB", package: "GRDB.swift"),
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
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "HubSyncBackup", dependencies: [
            "HubSyncBase", "HubSyncNet", "HubSyncHousehold", "HubSyncStore", "HubSyncCore", "HubSyncCrypto", "CHubZstd", "CHubSodium",
        ]),
        .executableTarget(name: "hubsync", dependencies: [
            "HubSyncBase", "HubSyncAgent", "HubSyncBackup", "HubSyncHousehold", "HubSyncStore", "HubSyncCore", "HubSyncCrypto", "CHubAvahi", "CHubZstd",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "hubsync-bench", dependencies: [
            "HubSyncBase",
            "HubSyncStore", "HubSyncCore", "HubSyncCrypto", "HubSyncAgent", "HubSyncBackup", "HubSyncHousehold",
        ]),

        // What every test target shares: temporary directories, the seeded generator, waiting,
        // child processes and agents.
        .target(name: "HubSyncTestSupport", dependencies: ["HubSyncCore"], path: "Tests/TestSupport"),
        .testTarget(name: "HubSyncBaseTests", dependencies: ["HubSyncBase", "HubSyncTestSupport"]),
        .testTarget(name: "HubSyncCryptoTests", dependencies: ["HubSyncCrypto", "HubSyncHousehold", "HubSyncTestSupport"]),
        .testTarget(name: "HubSyncCoreTests", dependencies: ["HubSyncCore", "HubSyncCrypto", "HubSyncTestSupport"]),
        .testTarget(name: "HubSyncHouseholdTests", dependencies: ["HubSyncHousehold", "HubSyncBase", "HubSyncCrypto", "HubSyncTestSupport"]),
        .testTarget(name: "HubSyncStoreTests", dependencies: ["HubSyncStore", "HubSyncCore", "HubSyncCrypto", "HubSyncTestSupport"]),
        .testTarget(name: "HubSyncBackupTests", dependencies: ["HubSyncBackup", "HubSyncHousehold", "HubSyncStore", "HubSyncCore", "HubSyncCrypto", "HubSyncTestSupport"]),
        .testTarget(name: "CLITests", dependencies: [
            "HubSyncCore", "HubSyncAgent", "HubSyncBackup", "HubSyncCrypto", "HubSyncHousehold", "HubSyncTestSupport",
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
        ]),
        .testTarget(name: "HubSyncDiscoveryTests", dependencies: ["HubSyncDiscovery", "HubSyncCrypto", "HubSyncTestSupport"]),
        // Real agents in network namespaces with real avahi-daemons (root only; they say why they skip).
        .testTarget(name: "SystemTests", dependencies: ["HubSyncCore", "HubSyncTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
