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

extension Store {
    /// Trusts a device (or updates its address); returns false when it was trusted already.
    @discardableResult
    public func addPeer(_ device: DeviceID, address: String?) throws(StoreError) -> Bool {
        guard device != self.device else {
            throw StoreError(.invalidInput, "that is this device's own ID; add the other device's ID (see `hubsync id` there)")
        }
        return try wrap {
            try pool.write { db in
                let exists = try Bool.fetchOne(db, sql: "SELECT 1 FROM peers WHERE device = ?", arguments: [device.hex]) ?? false
                if exists {
                    if let address {
                        try db.execute(sql: "UPDATE peers SET address = ? WHERE device = ?", arguments: [address, device.hex])
                    }
                } else {
                    try db.execute(sql: "INSERT INTO peers (device, address, added) VALUES (?, ?, ?)",
                                   arguments: [device.hex, address, Int64(wallClock())])
                }
                return !exists
            }
        }
    }

    /// Stops trusting a device; returns false when it was not trusted.
    @discardableResult
    public func removePeer(_ device: DeviceID) throws(StoreError) -> Bool {
        try wrap {
            try pool.write { db in
                try db.execute(sql: "DELETE FROM peers WHERE device = ?", arguments: [device.hex])
                return db.changesCount > 0
            }
        }
    }

    public func peers() throws(StoreError) -> [PeerRecord] {
        try wrap {
            try pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM peers ORDER BY added, device").map(Self.peer(from:))
            }
        }
    }

    public func peer(_ device: DeviceID) throws(StoreError) -> PeerRecord? {
        try wrap {
            try pool.read { db in
                try Row.fetchOne(db, sql: "SELECT * FROM peers WHERE device = ?", arguments: [device.hex]).map(Self.peer(from:))
            }
        }
    }

    public func isTrusted(_ device: DeviceID) throws(StoreError) -> Bool {
        try peer(device) != nil
    }

    /// Merges states a peer sent from its change log and moves the watermark in the same
    /// transaction, so a crash never loses acknowledged changes nor applies a batch twice wrongly.
    @discardableResult
    public func merge(_ states: [RecordState], from peer: DeviceID, epoch: String,
                      upTo sequence: Int64) throws(StoreError) -> MergeSummary {
        try merge(states, source: peer) { db in
            try db.execute(sql: """
                UPDATE peers SET their_epoch = ?, their_seq = max(CASE WHEN their_epoch = ? THEN their_seq ELSE 0 END, ?),
                  last_sync = ? WHERE device = ?
                """, arguments: [epoch, epoch, sequence, Int64(wallClock()), peer.hex])
        }
    }

    /// Merges states a peer sent outside its change log (a repair), noting the peer as their
    /// source so that results equal to what it sent are never pushed back to it.
    @discardableResult
    public func merge(_ states: [RecordState], from peer: DeviceID) throws(StoreError) -> MergeSummary {
        try merge(states, source: peer) { _ in }
    }

    /// Records that the peer has applied this store's changes up to `sequence`.
    public func recordAck(from peer: DeviceID, sequence: Int64) throws(StoreError) {
        try wrap {
            try pool.write { db in
                try db.execute(sql: "UPDATE peers SET acked_seq = max(acked_seq, ?), last_sync = ? WHERE device = ?",
                               arguments: [sequence, Int64(wallClock()), peer.hex])
            }
        }
    }

    /// Forgets a peer's watermark (its log epoch changed: its store was made anew).
    public func resetWatermark(of peer: DeviceID, epoch: String) throws(StoreError) {
        try wrap {
            try pool.write { db in
                try db.execute(sql: "UPDATE peers SET their_epoch = ?, their_seq = 0 WHERE device = ?",
                               arguments: [epoch, peer.hex])
            }
        }
    }

    static func peer(from row: Row) throws -> PeerRecord {
        PeerRecord(device: try DeviceID(hex: row["device"]), address: row["address"],
                   added: UInt64(max(0, row["added"] as Int64)), theirEpoch: row["their_epoch"],
                   theirSequence: row["their_seq"], ackedSequence: row["acked_seq"],
                   lastSync: UInt64(max(0, row["last_sync"] as Int64)))
    }
}
