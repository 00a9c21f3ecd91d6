public import HubSyncCore
public import HubSyncCrypto
internal import GRDB
import Foundation

/// A trusted peer as the store keeps it.
public struct PeerRecord: Sendable, Equatable {
    public var device: DeviceID
    public var address: String?
    public var added: UInt64
    /// The peer's log epoch and last sequence applied here: where the next fast path starts.
    public var theirEpoch: String
    public var theirSequence: Int64
    /// This store's last sequence the peer acknowledged.
    public var ackedSequence: Int64
    public var lastSync: UInt64
}

/// The peers table as ``Store/Read``s and ``Store/Write``s (run them with `read(_:)` and
/// `write(_:)`, blocking or with `await`), and the blocking methods the CLI and tests call.
extension Store.Read {
    /// Every trusted peer, oldest first.
    public static var peers: Store.Read<[PeerRecord]> {
        .init { _, db in try Row.fetchAll(db, sql: "SELECT * FROM peers ORDER BY added, device").map(Store.peer(from:)) }
    }

    /// The trusted peer `device`; nil when it is not trusted.
    public static func peer(_ device: DeviceID) -> Store.Read<PeerRecord?> {
        .init { _, db in
            try Row.fetchOne(db, sql: "SELECT * FROM peers WHERE device = ?", arguments: [device.hex]).map(Store.peer(from:))
        }
    }

    /// Whether `device` is a trusted peer.
    public static func isTrusted(_ device: DeviceID) -> Store.Read<Bool> {
        .init { _, db in try Bool.fetchOne(db, sql: "SELECT 1 FROM peers WHERE device = ?", arguments: [device.hex]) ?? false }
    }
}

extension Store.Write {
    /// Trusts a device (or updates its address); false when it was trusted already.
    public static func addPeer(_ device: DeviceID, address: String?) -> Store.Write<Bool> {
        .init(peers: { store, db in
            guard device != store.device else {
                throw StoreError(.invalidInput, "that is this device's own ID; add the other device's ID (see `hubsync id` there)")
            }
            let exists = try Bool.fetchOne(db, sql: "SELECT 1 FROM peers WHERE device = ?", arguments: [device.hex]) ?? false
            if exists {
                if let address {
                    try db.execute(sql: "UPDATE peers SET address = ? WHERE device = ?", arguments: [address, device.hex])
                }
            } else {
                try db.execute(sql: "INSERT INTO peers (device, address, added) VALUES (?, ?, ?)",
                               arguments: [device.hex, address, Int64(store.wallClock())])
            }
            return !exists
        })
    }

    /// Stops trusting a device; false when it was not trusted.
    public static func removePeer(_ device: DeviceID) -> Store.Write<Bool> {
        .init(peers: { _, db in
            try db.execute(sql: "DELETE FROM peers WHERE device = ?", arguments: [device.hex])
            return db.changesCount > 0
        })
    }

    /// Merges states a peer sent from its change log and moves the watermark in the same
    /// transaction, so a crash never loses acknowledged changes nor applies a batch twice wrongly.
    public static func merge(_ states: [RecordState], from peer: DeviceID, epoch: String,
                             upTo sequence: Int64) -> Store.Write<MergeSummary> {
        .init(records: { store, db, ctx in
            try db.execute(sql: """
                UPDATE peers SET their_epoch = ?, their_seq = max(CASE WHEN their_epoch = ? THEN their_seq ELSE 0 END, ?),
                  last_sync = ? WHERE device = ?
                """, arguments: [epoch, epoch, sequence, Int64(store.wallClock()), peer.hex])
            return try store.merge(states, source: peer, db: db, ctx: &ctx)
        })
    }

    /// Merges states a peer sent outside its change log (a repair), noting the peer as their
    /// source so that results equal to what it sent are never pushed back to it.
    public static func merge(_ states: [RecordState], from peer: DeviceID) -> Store.Write<MergeSummary> {
        .init(records: { store, db, ctx in try store.merge(states, source: peer, db: db, ctx: &ctx) })
    }

    /// Records that the peer has applied this store's changes up to `sequence`.
    public static func recordAck(from peer: DeviceID, sequence: Int64) -> Store.Write<Void> {
        .init(peers: { store, db in
            try db.execute(sql: "UPDATE peers SET acked_seq = max(acked_seq, ?), last_sync = ? WHERE device = ?",
                           arguments: [sequence, Int64(store.wallClock()), peer.hex])
        })
    }

    /// Forgets a peer's watermark (its log epoch changed: its store was made anew).
    public static func resetWatermark(of peer: DeviceID, epoch: String) -> Store.Write<Void> {
        .init(peers: { _, db in
            try db.execute(sql: "UPDATE peers SET their_epoch = ?, their_seq = 0 WHERE device = ?", arguments: [epoch, peer.hex])
        })
    }
}

extension Store {
    /// Trusts a device (or updates its address); returns false when it was trusted already.
    @discardableResult
    public func addPeer(_ device: DeviceID, address: String?) throws(StoreError) -> Bool {
        try write(.addPeer(device, address: address))
    }

    /// Stops trusting a device; returns false when it was not trusted.
    @discardableResult
    public func removePeer(_ device: DeviceID) throws(StoreError) -> Bool { try write(.removePeer(device)) }

    /// Every trusted peer, oldest first.
    public func peers() throws(StoreError) -> [PeerRecord] { try read(.peers) }

    /// The trusted peer `device`; nil when it is not trusted.
    public func peer(_ device: DeviceID) throws(StoreError) -> PeerRecord? { try read(.peer(device)) }

    /// Whether `device` is a trusted peer.
    public func isTrusted(_ device: DeviceID) throws(StoreError) -> Bool { try read(.isTrusted(device)) }

    /// Merges states a peer sent from its change log and moves its watermark in one transaction.
    @discardableResult
    public func merge(_ states: [RecordState], from peer: DeviceID, epoch: String,
                      upTo sequence: Int64) throws(StoreError) -> MergeSummary {
        try write(.merge(states, from: peer, epoch: epoch, upTo: sequence))
    }

    /// Merges states a peer sent outside its change log (a repair).
    @discardableResult
    public func merge(_ states: [RecordState], from peer: DeviceID) throws(StoreError) -> MergeSummary {
        try write(.merge(states, from: peer))
    }

    /// Records that the peer has applied this store's changes up to `sequence`.
    public func recordAck(from peer: DeviceID, sequence: Int64) throws(StoreError) {
        try write(.recordAck(from: peer, sequence: sequence))
    }

    /// Forgets a peer's watermark (its log epoch changed: its store was made anew).
    public func resetWatermark(of peer: DeviceID, epoch: String) throws(StoreError) {
        try write(.resetWatermark(of: peer, epoch: epoch))
    }

    static func peer(from row: Row) throws -> PeerRecord {
        PeerRecord(device: try DeviceID(hex: try row.decode(forColumn: "device")), address: try row.decode(forColumn: "address"),
                   added: UInt64(max(0, try row.decode(Int64.self, forColumn: "added"))), theirEpoch: try row.decode(forColumn: "their_epoch"),
                   theirSequence: try row.decode(forColumn: "their_seq"), ackedSequence: try row.decode(forColumn: "acked_seq"),
                   lastSync: UInt64(max(0, try row.decode(Int64.self, forColumn: "last_sync"))))
    }
}
