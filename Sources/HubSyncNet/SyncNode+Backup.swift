import HubSyncBase
import Foundation
public import HubSyncCrypto
import NIOCore

extension SyncNode {
    /// Serves one backup connection from a device on behalf of the repository it stores here.
    public typealias BackupHandler = @Sendable (_ client: DeviceID, _ channel: BackupChannel) async throws -> Void

    /// How long a backup connection may stay silent before the peer closes it.
    static let backupIdleTimeout: Duration = .seconds(300)

    /// Lets the listener serve backup connections with `handler` (nil: refuse them).
    public func serveBackups(with handler: BackupHandler?) { backupHandler.withLock { $0 = handler } }

    /// A backup connection after its handshake (the pipeline ran it as responder): the trust
    /// check answered in a sealed hello (`0x00`, or `0x03 ‖ reason`), then the handler.
    func serveBackup(_ channel: AuthenticatedChannel) async {
        guard let handler = backupHandler.withLock({ $0 }), let peer = channel.peer else { return await channel.close() }
        do {
            try await channel.executeThenClose { inbound, outbound in
                let backup = BackupChannel(inbound: inbound, outbound: outbound)
                let trusted = try await store.read(.isTrusted(peer))
                guard trusted else {
                    refused.withLock { $0[peer] = UInt64(Date().timeIntervalSince1970 * 1000) }
                    logger.warning("refused backups from a device that is not trusted", metadata: ["peer.id": "\(peer)"])
                    try await backup.send([3] + Array(("device \(peer.short) is not trusted by \(identity.deviceID.short); "
                        + "pair the devices first (`hubsync pair`, or `hubsync peers add \(peer)` on that device)").utf8))
                    return
                }
                try await backup.send([0])
                logger.info("backup connection", metadata: ["peer.id": "\(peer.short)"])
                // A client that sends nothing for `backupIdleTimeout` loses its connection.
                let watchdog = Task {
                    while !Task.isCancelled {
                        try await Deadlines.sleep(for: .seconds(10))
                        if backup.idle > Self.backupIdleTimeout { await backup.close(); return }
                    }
                }
                defer { watchdog.cancel() }
                try await handler(peer, backup)
            }
        } catch {
            // Not recorded as the sync peer's status: a backup connection's end says nothing about sync.
            logger.info("backup connection ended", metadata: ["peer.id": "\(peer.short)", "reason": "\(error)"])
        }
    }
}
