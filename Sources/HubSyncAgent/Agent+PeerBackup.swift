import Foundation
import HubSyncBackup
import HubSyncCrypto
import HubSyncHousehold
import HubSyncNet
import HubSyncStore

/// The agent stores other members' backups (`peer:DEVICE-ID` targets) in `DATA/backups/`
/// (protocol/SPEC.md 5.12): requests arrive on backup connections of the sync listener.
extension Agent {
    /// Answers backup connections from trusted devices with a ``PeerStorage`` in this data directory.
    func makeBackupHandler() -> SyncNode.BackupHandler {
        let storage = PeerStorage(dataDirectory: directory, quota: configuration.peerBackups.quotaBytes,
                                  quarantineSeconds: configuration.peerBackups.quarantineSeconds)
        let server = identity.deviceID, household = self.household, store = self.store
        // A prune plan's signer must be a current member of the household, or a trusted peer.
        let isMember: @Sendable (PublicSigningKey) -> Bool = { key in
            let device = DeviceID(publicKey: key)
            if household.current.isMember(device) { return true }
            return (try? store.isTrusted(device)) == true
        }
        // No request larger than the whole quota (and the eighth more prune plans may use) can be
        // kept: such a request is answered from its length, its body never held.
        let maximum = storage.quota + storage.planAllowance + 64 * 1024
        return { client, channel in
            // A client removed meanwhile (its connection revoked) gets no further request served.
            while let incoming = try await channel.receiveRequest(maximum: maximum), !channel.isRevoked {
                guard case .message(let message) = incoming else {
                    if case .tooLong(let length) = incoming {
                        try await channel.send(PeerProtocol.response(.overQuota, Array(("over quota: a request of \(length) "
                            + "bytes is larger than the \(storage.quota) bytes this peer keeps for this device; raise "
                            + "\"peer_backups\": {\"quota_bytes\"} in the peer's config.json").utf8)))
                    } else if case .busy(let length) = incoming {
                        try await channel.send(PeerProtocol.response(.io, Array(("busy: the storing peer is receiving "
                            + "\(BackupChannel.receiveBudget >> 20) MiB of requests from its devices already; the request of "
                            + "\(length) bytes was dropped; run the backup again in a while").utf8)))
                    }
                    continue
                }
                let answer: [UInt8]
                do {
                    let request = try PeerProtocol.Request.decode(message)
                    // File work runs on the blocking-I/O pool, not the event loop or cooperative pool.
                    answer = try await BlockingIO.run {
                        storage.handle(request, from: client, server: server, isMember: isMember)
                    }
                } catch let e as BackupError {
                    answer = PeerProtocol.response(e)
                }
                try await channel.send(answer)
            }
        }
    }
}
