import Foundation
import HubSyncBackup
import HubSyncCrypto
import HubSyncNet
import HubSyncStore

extension RepoOptions {
    /// A `peer:DEVICE-ID[@HOST:PORT]` target: the device must be a trusted peer here; its
    /// address comes from `@HOST:PORT`, else from the peers table (`hubsync peers`).
    func peerTarget(_ text: String) throws(CLIError) -> PeerTarget {
        let parts = text.split(separator: "@", maxSplits: 1).map(String.init)
        let device: DeviceID
        do { device = try DeviceID(parsing: parts[0]) } catch {
            throw .usage("--repo peer:\(text): \"\(parts[0])\" is not a device ID (\(error)); `hubsync peers` lists them")
        }
        let identity = try directory.identity()
        guard device != identity.deviceID else {
            throw .usage("--repo peer:\(text) names this device; give another device of the household, or local:PATH")
        }
        var address = parts.count > 1 ? parts[1] : nil
        if address == nil {
            let store = try directory.openStore()
            guard let peer = try guarded({ try store.peer(device) }) else {
                throw .failure("device \(device.short) is not a peer of this device, so it cannot hold its backups; pair "
                    + "with it first (`hubsync pair`) or trust it with `hubsync peers add \(device) --address HOST:PORT`")
            }
            address = peer.address
        }
        guard let address, let (host, port) = SyncNode.split(address) else {
            throw .failure("no address is known for device \(device.short); set one with `hubsync peers add \(device) "
                + "--address HOST:PORT` or give it as --repo peer:\(parts[0])@HOST:PORT")
        }
        return PeerTarget(device: device, host: host, port: port, identity: identity.signingKey)
    }
}
