internal import CHubAvahi
import Foundation
import Synchronization

/// The avahi-client objects behind ``Discovery``, driven from avahi's threaded poll.
///
/// Every mutable field is touched only on avahi's thread (its callbacks run with the poll lock
/// held) or by another thread between `avahi_threaded_poll_lock` and `_unlock`, or before the
/// thread starts / after it stopped; hence `@unchecked Sendable`.
final class AvahiEngine: @unchecked Sendable {
    let configuration: DiscoveryConfiguration
    let continuation: AsyncStream<DiscoveryEvent>.Continuation
    let poll: OpaquePointer?
    let stateBox = Mutex<DiscoveryState>(.starting)
    let nameBox: Mutex<String>
    let lifecycle = Mutex<(started: Bool, stopped: Bool)>((false, false))

    // Guarded by the poll lock:
    var client: OpaquePointer?
    var group: OpaquePointer?
    var browser: OpaquePointer?
    /// Consecutive attempts that found no system bus (the retry backs off with them).
    var failedConnects = 0
    var retryTimer: OpaquePointer?
    var txt: [String: String]
    var renamed = false
    /// Interface/protocol pairs each service name is seen on; `lost` when the last one goes.
    var seen: [String: Set<Int64>] = [:]

    init(configuration: DiscoveryConfiguration, continuation: AsyncStream<DiscoveryEvent>.Continuation) {
        self.configuration = configuration
        self.continuation = continuation
        txt = configuration.txt
        nameBox = Mutex(configuration.serviceName)
        poll = avahi_threaded_poll_new()
    }

    var state: DiscoveryState { stateBox.withLock { $0 } }
    var currentServiceName: String { nameBox.withLock { $0 } }
    var context: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ userdata: UnsafeMutableRawPointer?) -> AvahiEngine {
        Unmanaged<AvahiEngine>.fromOpaque(userdata!).takeUnretainedValue()
    }

    func start() throws(DiscoveryError) {
        guard let poll else {
            setState(.daemonUnavailable(reason: "avahi-client could not start (no threaded poll: out of memory)"))
            throw DiscoveryError("cannot create avahi's threaded poll (out of memory)")
        }
        let go = lifecycle.withLock { l -> Bool in
            guard !l.started, !l.stopped else { return false }
            l.started = true
            return true
        }
        guard go else { return }
        // Connecting makes blocking D-Bus calls: do it on avahi's thread, not the caller's.
        scheduleRetry(afterMilliseconds: 0)
        guard avahi_threaded_poll_start(poll) >= 0 else {
            setState(.daemonUnavailable(reason: "avahi-client could not start its thread"))
            throw DiscoveryError("cannot start avahi's threaded poll thread")
        }
    }

    func stop() {
        let (wasStarted, first) = lifecycle.withLock { l -> (Bool, Bool) in
            defer { l.stopped = true }
            return (l.started, !l.stopped)
        }
        guard first else { return }
        if let poll {
            if wasStarted { avahi_threaded_poll_stop(poll) }
            if let client { avahi_client_free(client) } // frees the entry group, browser, resolvers
            client = nil; group = nil; browser = nil; retryTimer = nil
            avahi_threaded_poll_free(poll)
        }
        setState(.stopped)
        continuation.finish()
    }

    func update(txt newTXT: [String: String]) {
        withPollLock {
            txt = newTXT
            guard let group, avahi_entry_group_is_empty(group) == 0 else { return }
            withStringList(TXTRecord.encode(newTXT)) { list in
                _ = avahi_entry_group_update_service_txt_strlst(
                    group, AvahiIfIndex(AVAHI_IF_UNSPEC), AvahiProtocol(AVAHI_PROTO_UNSPEC), AvahiPublishFlags(0),
                    currentServiceName, configuration.serviceType, nil, list)
            }
        }
    }

    /// Runs `body` holding the poll lock when avahi's thread runs (else the thread is not there).
    func withPollLock(_ body: () -> Void) {
        let running = lifecycle.withLock { $0.started && !$0.stopped }
        guard let poll else { return }
        if running { avahi_threaded_poll_lock(poll) }
        defer { if running { avahi_threaded_poll_unlock(poll) } }
        body()
    }

    func setState(_ new: DiscoveryState) {
        let changed = stateBox.withLock { s -> Bool in
            guard s != new else { return false }
            s = new
            return true
        }
        if changed { continuation.yield(.stateChanged(new)) }
    }

    // MARK: client

    /// Creates the client; with AVAHI_CLIENT_NO_FAIL it waits for a daemon that is not there yet.
    func connect() {
        var error: Int32 = 0
        let c = avahi_client_new(avahi_threaded_poll_get(poll), AVAHI_CLIENT_NO_FAIL, { c, state, userdata in
            AvahiEngine.from(userdata).clientChanged(c, state)
        }, context, &error)
        if let c {
            client = c
            failedConnects = 0
        } else {
            // No system bus to talk to: avahi-daemon cannot be running either. Look again later,
            // backing off (2 s, 4 s, … up to a minute), so a machine without D-Bus is not woken
            // every few seconds for nothing.
            setState(.daemonUnavailable(reason: "avahi-daemon is not running (the system D-Bus is not reachable: \(Self.message(error)))"))
            failedConnects += 1
            let first = Self.milliseconds(configuration.retryInterval)
            scheduleRetry(afterMilliseconds: min(first << min(failedConnects - 1, 8), max(first, 60_000)))
        }
    }

    func clientChanged(_ c: OpaquePointer?, _ clientState: AvahiClientState) {
        guard let c else { return }
        client = c // the first call comes from inside avahi_client_new, before it returned
        switch clientState {
        case AVAHI_CLIENT_S_RUNNING:
            setState(renamed ? .collisionRenamed(newName: currentServiceName) : .running)
            publish(c)
            browse(c)
        case AVAHI_CLIENT_S_COLLISION, AVAHI_CLIENT_S_REGISTERING:
            // The host name is being (re)registered: withdraw, publish again once running.
            if let group { avahi_entry_group_reset(group) }
        case AVAHI_CLIENT_CONNECTING:
            setState(.daemonUnavailable(reason: "avahi-daemon is not running"))
        case AVAHI_CLIENT_FAILURE:
            let error = avahi_client_errno(c)
            setState(.daemonUnavailable(reason: error == AVAHI_ERR_DISCONNECTED
                ? "avahi-daemon is not running (it went away)" : "avahi-daemon failed: \(Self.message(error))"))
            // The client cannot recover by itself: replace it, outside this callback.
            scheduleRetry(afterMilliseconds: 0)
        default:
            break
        }
    }

    /// Frees a failed client and everything made from it; every service seen is lost.
    func resetClient() {
        if let client { avahi_client_free(client) }
        client = nil; group = nil; browser = nil
        for name in seen.keys.sorted() { continuation.yield(.lost(name: name)) }
        seen = [:]
    }

    // MARK: retry timer

    func scheduleRetry(afterMilliseconds ms: Int) {
        guard let api = avahi_threaded_poll_get(poll) else { return }
        var tv = timeval()
        gettimeofday(&tv, nil)
        let micros = Int(tv.tv_usec) + ms * 1000
        tv.tv_sec += micros / 1_000_000
        tv.tv_usec = .init(micros % 1_000_000)
        if let retryTimer {
            api.pointee.timeout_update(retryTimer, &tv)
        } else {
            retryTimer = api.pointee.timeout_new(api, &tv, { timer, userdata in
                AvahiEngine.from(userdata).retryFired()
            }, context)
        }
    }

    func retryFired() {
        if let retryTimer, let api = avahi_threaded_poll_get(poll) {
            api.pointee.timeout_free(retryTimer)
        }
        retryTimer = nil
        if let client, avahi_client_get_state(client) == AVAHI_CLIENT_S_RUNNING {
            publish(client)
            browse(client)
            return
        }
        if let client, avahi_client_get_state(client) == AVAHI_CLIENT_CONNECTING { return }
        resetClient()
        connect()
    }

    // MARK: helpers

    static func message(_ error: Int32) -> String { String(cString: avahi_strerror(error)) }

    static func milliseconds(_ d: Duration) -> Int {
        Int(d.components.seconds) * 1000 + Int(d.components.attoseconds / 1_000_000_000_000_000)
    }
}

/// Calls `body` with an avahi string list holding `strings`, freed afterwards.
func withStringList<R>(_ strings: [String], _ body: (UnsafeMutablePointer<AvahiStringList>?) -> R) -> R {
    var list: UnsafeMutablePointer<AvahiStringList>? = nil
    // avahi_string_list_add prepends; add in reverse to keep the order.
    for s in strings.reversed() { list = avahi_string_list_add(list, s) }
    defer { avahi_string_list_free(list) }
    return body(list)
}
