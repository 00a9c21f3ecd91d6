import Foundation
public import HubSyncCore

/// What `GET /v1/status` answers and `hubsync status` prints: one type for the agent, its API
/// and the CLI. Keys are snake_case; an absent value is `null`, never a missing key.
public struct AgentStatus: Codable, Sendable, Equatable {
    public var deviceID: String
    /// This device's name (`init --name`, `hubsync name`).
    @Nullable public var deviceName: String?
    public var pid: Int
    @Nullable public var listen: String?
    @Nullable public var api: String?
    public var uptimeSeconds: Int
    public var repairIntervalSeconds: Int
    public var maxClockDriftSeconds: Int
    public var store: StoreSummary
    public var peers: [Peer]
    public var refused: [Refused]
    public var mdns: Discovery
    @Nullable public var backup: Backup?
    /// Storage used by the store and by each configured backup target.
    public var storage: Storage

    public struct StoreSummary: Codable, Sendable, Equatable {
        public var lastSequence: Int64
        public var conflicts: Int
        /// Live records per collection.
        public var records: [String: Int]
        /// Why the store could not be read (damaged, a failing disk), with what to do; null when it could.
        @Nullable public var problem: String?
    }

    /// One trusted peer: connected, or why not; how far behind.
    public struct Peer: Codable, Sendable, Equatable {
        public var deviceID: String
        /// The name the peer gave itself (its signed name record), cleaned for printing; nil
        /// before it is known.
        @Nullable public var deviceName: String?
        @Nullable public var address: String?
        public var connected: Bool
        /// Local changes the peer has not acknowledged.
        public var pendingToSend: Int64
        /// The last of the peer's sequence numbers this device holds.
        public var theirSequenceHeld: Int64
        public var bytesSent: Int
        public var bytesReceived: Int
        @Nullable public var lastSync: String?
        @Nullable public var fastPathFrom: Int64?
        @Nullable public var lastRepair: String?
        @Nullable public var lastRepairRound: RepairRound?
        /// Why it is not connected (only when it is not).
        public var reason: String?
        /// Records this device could not send to the peer, or merge from it, in the current
        /// session, and why ("not sent: …", "not merged here: …"); the others went on, and each
        /// is tried again at the next repair round.
        public var undelivered: [Undelivered] = []
    }

    /// A record that could not be sent to a peer.
    public struct Undelivered: Codable, Sendable, Equatable {
        /// `collection/id`.
        public var record: String
        public var reason: String
        public init(record: String, reason: String) {
            self.record = record
            self.reason = reason
        }
    }

    public struct RepairRound: Codable, Sendable, Equatable {
        public var recordsSent: Int
        public var recordsReceived: Int
        public var roundTrips: Int
        public var bytesSent: Int
        public var bytesReceived: Int
        public var milliseconds: Int
    }

    /// A device that tried to connect and was refused.
    public struct Refused: Codable, Sendable, Equatable {
        public var deviceID: String
        public var reason: String
        public var at: String
    }

    /// mDNS: `running`, `starting`, `unavailable` (with the reason), `stopped` or `disabled`.
    public struct Discovery: Codable, Sendable, Equatable {
        public var state: String
        public var reason: String?
        public var serviceName: String?
    }

    /// The backup schedule and what it did last.
    public struct Backup: Codable, Sendable, Equatable {
        public var targets: [String]
        public var intervalSeconds: Int
        public var recoveryPointSeconds: Int
        @Nullable public var last: String?
        @Nullable public var ageSeconds: Int64?
        @Nullable public var snapshot: String?
        @Nullable public var target: String?
        /// Older than the recovery point, or the last attempt failed.
        @Nullable public var warning: String?
        /// The last restore drill the agent ran (the dashboard's **Run a drill**), or null.
        @Nullable public var lastDrill: Drill?
    }

    /// A restore drill: the latest snapshot restored into a scratch store and checked.
    public struct Drill: Codable, Sendable, Equatable {
        public var target: String
        public var snapshot: String
        /// When it ran (RFC 3339).
        public var at: String
        /// How long the restore took: the recovery time.
        public var recoveryTimeSeconds: Double
        /// How old the restored snapshot was: the recovery point.
        public var recoveryPointSeconds: Double
        public var ok: Bool
        public var problems: [String]
    }

    /// Storage used: the store's files, and each backup target's repository as last measured.
    public struct Storage: Codable, Sendable, Equatable {
        /// The store's SQLite files (the database, its write-ahead log and shared memory), in bytes.
        public var storeBytes: Int
        /// Each target of config.json's `"backup"`, in its order (empty without a schedule).
        public var targets: [TargetStorage]
    }

    /// One backup target's size, measured when the agent starts and after each backup to it.
    public struct TargetStorage: Codable, Sendable, Equatable {
        public var target: String
        /// The repository's files (packs, indexes, snapshots, keys), in bytes; null before it
        /// could be measured.
        @Nullable public var repositoryBytes: Int?
        /// On a peer target: what the peer stores for this device and its quota for it.
        @Nullable public var peerUsedBytes: Int?
        @Nullable public var peerQuotaBytes: Int?
        /// When it was measured (RFC 3339), null if never.
        @Nullable public var measuredAt: String?
        /// Why it could not be measured, with what to do.
        @Nullable public var problem: String?

        public init(target: String, repositoryBytes: Int? = nil, peerUsedBytes: Int? = nil, peerQuotaBytes: Int? = nil,
                    measuredAt: String? = nil, problem: String? = nil) {
            self.target = target
            self.repositoryBytes = repositoryBytes
            self.peerUsedBytes = peerUsedBytes
            self.peerQuotaBytes = peerQuotaBytes
            self.measuredAt = measuredAt
            self.problem = problem
        }
    }

    /// The status as JSON text, as the API sends it.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8))
    }
}

extension AgentStatus {
    /// Reads the API's answer.
    public init(decoding bytes: [UInt8]) throws {
        let decoder = JSONDecoder()
        // snake_case to the property names; `id` is `ID` there (`device_id` → `deviceID`).
        decoder.keyDecodingStrategy = .custom { path in
            let parts = path.last!.stringValue.split(separator: "_").map(String.init)
            let name = (parts.first ?? "") + parts.dropFirst().map { $0 == "id" ? "ID" : $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
            return AnyKey(name)
        }
        self = try decoder.decode(AgentStatus.self, from: Data(bytes))
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// An optional value that is written as `null` when absent (instead of leaving its key out) and
/// read from a missing key or a `null` alike.
@propertyWrapper
public struct Nullable<Wrapped: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Wrapped?
    public init(wrappedValue: Wrapped?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(Wrapped.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// A missing key reads as nil.
    public func decode<T>(_ type: Nullable<T>.Type, forKey key: Key) throws -> Nullable<T> {
        try decodeIfPresent(type, forKey: key) ?? Nullable(wrappedValue: nil)
    }
}
