/// A service of our type seen on the network, resolved to an address.
public struct DiscoveredService: Sendable, Equatable {
    /// The advertised service name (random per agent start; carries no device identity).
    public var name: String
    /// The numeric address (`10.77.0.2`, `fe80::1%eth0`), ready to dial.
    public var address: String
    public var port: Int
    /// The TXT records as key → value (keys lowercased; a key without `=` maps to "").
    public var txt: [String: String]
    /// The network interface index it was seen on.
    public var interface: Int32

    public init(name: String, address: String, port: Int, txt: [String: String], interface: Int32 = -1) {
        self.name = name
        self.address = address
        self.port = port
        self.txt = txt
        self.interface = interface
    }

    /// `HOST:PORT` for dialing, with brackets around an IPv6 host.
    public var endpoint: String { (address.contains(":") ? "[\(address)]" : address) + ":\(port)" }
}

/// What discovery reports, in order.
public enum DiscoveryEvent: Sendable, Equatable {
    /// A service was found (or found again after the daemon came back).
    case found(DiscoveredService)
    /// The service with this name is gone from every interface (or the daemon went away).
    case lost(name: String)
    /// The connection to avahi-daemon changed state.
    case stateChanged(DiscoveryState)
}

/// The state of the connection to avahi-daemon, for status.
public enum DiscoveryState: Sendable, Equatable, CustomStringConvertible {
    /// Not started yet, or connecting.
    case starting
    /// Publishing and browsing.
    case running
    /// Our service name collided with another on the network; published under `newName`.
    case collisionRenamed(newName: String)
    /// No avahi-daemon (or no system D-Bus) to talk to; discovery resumes when it appears.
    case daemonUnavailable(reason: String)
    /// Stopped by ``Discovery/stop()``.
    case stopped

    public var description: String {
        switch self {
        case .starting: "starting"
        case .running: "running"
        case .collisionRenamed(let name): "running (name collision: renamed to \(name))"
        case .daemonUnavailable(let reason): "unavailable: \(reason)"
        case .stopped: "stopped"
        }
    }

    /// Whether publishing and browsing work right now.
    public var isRunning: Bool {
        switch self {
        case .running, .collisionRenamed: true
        default: false
        }
    }
}
