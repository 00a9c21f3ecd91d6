public import HubSyncCrypto

/// A removal refused because the removed device enrolled members that the remover neither
/// vouched for (`--keep-enrolled`) nor removed too (`--remove-enrolled`) (protocol/SPEC.md 4.8).
public struct EnrolledDevicesError: Error, Sendable, CustomStringConvertible {
    /// The device whose removal was asked for.
    public var device: DeviceID
    /// The members it enrolled that were neither kept nor removed, sorted.
    public var enrolled: [DeviceID]
    /// The members the remover said it keeps.
    public var kept: Set<DeviceID>

    public init(device: DeviceID, enrolled: [DeviceID], kept: Set<DeviceID>) {
        self.device = device
        self.enrolled = enrolled
        self.kept = kept
    }

    /// What happened and what to do, naming the devices.
    public var message: String {
        let names = enrolled.map(\.description).joined(separator: " ")
        return "\(device.short) enrolled \(enrolled.count == 1 ? "a device" : "\(enrolled.count) devices") that would "
            + "leave the household with it: \(names); nothing was removed. Vouch for the ones you know with "
            + "`--keep-enrolled ID…` (this device adds them again) or remove them too with `--remove-enrolled`"
    }

    public var description: String { message }
}
