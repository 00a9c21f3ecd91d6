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
        return { client, channel in
            while let message = try await channel.receive() {
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
