@preconcurrency internal import CHubSodium

extension Sodium {
    /// The linked libsodium's version, e.g. "1.0.18".
    public static var versionString: String { String(cString: sodium_version_string()) }
}
