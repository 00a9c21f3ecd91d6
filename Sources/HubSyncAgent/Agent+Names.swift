import Foundation
import Hummingbird
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncStore

/// This device's name (DeviceNames): kept in `device.json`, and in the store as the signed record
/// every other device reads it from.
extension Agent {
    /// Writes this device's name record when the store does not hold the name `device.json`
    /// gives (a device made before names synced, or renamed without an agent).
    func publishName() async throws {
        let dataDirectory = DataDirectory(path: directory)
        guard let name = DeviceNames.configuredName(in: dataDirectory).flatMap({ try? DeviceNames.validated($0) }) else { return }
        try await writeName(name)
    }

    /// Writes the name record for `name`, unless the store holds it already.
    func writeName(_ name: String) async throws {
        let key = DeviceNames.recordKey(of: identity.deviceID)
        let existing = try await store.read(.record(key))
        if let existing, let held = DeviceNames.verifiedName(in: existing), held.name == name { return }
        _ = try await store.write(.merge([DeviceNames.record(naming: name, identity: identity, updating: existing)]))
        logger.info("this device's name is recorded for the other devices", metadata: ["device.name": "\(name)"])
    }

    /// The name `device` gave itself once its signed name record is here (it comes by sync, so
    /// just after pairing it may be on its way), woken by that record's changes; nil after `limit`.
    func waitForName(of device: DeviceID, for limit: Duration) async -> String? {
        let key = DeviceNames.recordKey(of: device)
        let changes = store.changeSignal { $0.state.key == key }
        defer { changes.cancel() }
        let deadline = ContinuousClock.now + limit
        while true {
            if let state = try? await store.read(.record(key)), let named = DeviceNames.verifiedName(in: state) { return named.name }
            guard await changes.wait(until: deadline) == .signalled else { return nil }
        }
    }

    /// `GET /v1/device` answers `{"device_id", "device_name"}`; `PUT /v1/device` `{"name"}`
    /// renames this device (in `device.json` and for every device that syncs with it).
    func addDeviceRoutes(to router: Router<BasicRequestContext>) {
        router.get("v1/device") { [self] _, _ in
            let name = DeviceNames.configuredName(in: DataDirectory(path: directory))
            return json(["device_id": .string(identity.deviceID.description), "device_name": name.map { .string($0) } ?? .null])
        }
        router.put("v1/device") { [self] request, _ in
            let body = try await bodyObject(request)
            guard let given = body["name"]?.stringValue else { throw APIError(.badRequest, "give the new name as {\"name\": \"laptop\"}") }
            let name: String
            do throws(ValidationFailure) { name = try DeviceNames.validated(given) } catch { throw APIError(.badRequest, error.message) }
            let dataDirectory = DataDirectory(path: directory)
            do {
                let device = identity.deviceID
                try await BlockingIO.run { try DeviceNames.saveConfiguredName(name, of: device, in: dataDirectory) }
            } catch {
                throw APIError(.internalServerError, FailureText.describe(error)?.message ?? FailureText.unknown(error))
            }
            try await writeName(name)
            return json(["device_id": .string(identity.deviceID.description), "device_name": .string(name)])
        }
    }
}
