@preconcurrency internal import CHubSodium

/// Process-wide libsodium initialization.
///
/// Every public entry point of this module calls ``ensureInitialized()``; callers never need to,
/// but may, for instance to fail early at start-up.
public enum Sodium {
    /// Initializes libsodium once per process; later calls cost one atomic load.
    ///
    /// Terminates the process if libsodium cannot initialize (it then has no usable random
    /// source, and no key could be generated safely).
    public static func ensureInitialized() {
        _ = initialization
    }

    /// Runs `sodium_init` exactly once: Swift initializes static properties lazily and thread-safely.
    private static let initialization: Void = {
        // sodium_init returns 0 on the first call, 1 when already initialized, -1 on failure.
        guard sodium_init() >= 0 else {
            fatalError("libsodium failed to initialize (sodium_init returned -1): "
                + "the system random source is unavailable; check that /dev/urandom exists "
                + "and getrandom(2) is permitted")
        }
    }()
}
