extension Handshake {
    /// Where one side of a handshake stands, and the identity it proves: ready with its
    /// ephemeral pair, waiting for the peer with what it keeps, or ended.
    ///
    /// ``HandshakeInitiator`` waits with its ephemeral pair and message 1, ``HandshakeResponder``
    /// with the keys message 3 needs.
    struct Progress<Waiting: Sendable>: Sendable {
        enum Stage: Sendable {
            case ready(EphemeralKeyPair)
            case waiting(Waiting)
            case finished
            case failed
        }

        /// The long-term key this side proves.
        let identity: SigningKey
        var stage: Stage

        /// A side that proves `identity`, ready to use `ephemeral`.
        init(identity: SigningKey, ephemeral: EphemeralKeyPair) {
            self.identity = identity
            stage = .ready(ephemeral)
        }

        /// Whether the handshake has not started yet.
        var isReady: Bool {
            if case .ready = stage { return true }
            return false
        }

        /// Whether the handshake finished or failed.
        var isEnded: Bool {
            switch stage {
            case .finished, .failed: true
            case .ready, .waiting: false
            }
        }
    }
}
