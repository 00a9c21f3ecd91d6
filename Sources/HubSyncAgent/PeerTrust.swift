public import HubSyncCrypto

/// Trust in a device removed from the household (protocol/SPEC.md 4.8): it cannot be trusted
/// again with that identity, by `peers add` or the API.
public enum PeerTrust {
    /// Why `peers add` refuses a removed device, and what to do.
    public static func removedMessage(_ device: DeviceID) -> String {
        "\(device) was removed from the household; it cannot be trusted again with that identity "
            + "(pair it again from a fresh data directory to give it a new one)"
    }
}
