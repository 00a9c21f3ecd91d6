import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncStore
import HubSyncAgent

/// Percent-encodes one path segment: everything but RFC 3986's unreserved ASCII characters.
func pathSegment(_ s: String) -> String {
    let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
    return s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? s
}

/// The CLI's view of the running agent: the API client, with errors as the CLI reports them.
struct AgentClient {
    let client: LocalAPIClient
    /// The agent's process.
    var pid: Int32
    var host: String { client.host }
    var port: UInt16 { client.port }

    /// The agent whose process `pid` holds the directory's writer lock, once its API is bound.
    static func running(in dir: DataDirectory, pid: Int32) -> AgentClient? {
        LocalAPIClient.running(in: dir, pid: pid).map { AgentClient(client: $0, pid: pid) }
    }

    /// A request that must succeed (2xx); otherwise the agent's error message becomes the CLI's.
    /// An agent slow to answer gets one line on standard error after a few seconds, so the
    /// wait is not silent (a long poll sets `notice` past the time it waits by design); one that
    /// does not answer at all is a `.timeout` failure. `upload` is sent as the body as it is,
    /// instead of `body` as JSON.
    func call(_ method: String, _ path: String, body: Value? = nil, upload: [UInt8]? = nil,
              timeout: Duration = .seconds(120), notice: Duration = .seconds(5)) throws(CLIError) -> Value {
        let (status, value): (Int, Value)
        let pid = self.pid
        let waiting: @Sendable () -> Void = {
            sayWaiting("waiting for the agent (pid \(pid)) to answer …", ["agent_pid": .int(Int64(pid))])
        }
        do {
            if let upload {
                (status, value) = try client.upload(path, bytes: upload, timeout: timeout, notice: notice, whileWaiting: waiting)
            } else {
                (status, value) = try client.request(method, path, body: body, timeout: timeout, notice: notice, whileWaiting: waiting)
            }
        } catch {
            guard error.code == .timeout else { throw CLIError(.other, error.message, cause: error) }
            throw CLIError(.timeout, error.message + "; if the agent stays silent, stop it (`kill \(pid)`) and start it again "
                + "(`hubsync run`)", cause: error)
        }
        guard (200..<300).contains(status) else {
            let message = value.objectValue?["error"]?.stringValue ?? "the agent answered HTTP \(status)"
            // A removal refused for the devices it would drop (409 naming them) is input to decide on.
            let undecided = status == 409 && value.objectValue?["enrolled"] != nil
            // So is resolving a field that has no conflict.
                || status == 409 && value.objectValue?["no_conflict"] == .bool(true)
            // And a pairing code that did not match.
                || status == 403 && value.objectValue?["wrong_code"] == .bool(true)
            // A body over the API's limit is input too large for one request.
            throw CLIError(status == 400 || status == 413 || undecided ? .invalidInput : status == 404 ? .notFound : .refused, message)
        }
        return value
    }

    /// `POST /v1/batch`: applies the writes through the agent.
    func batch(_ request: BatchRequest) throws(CLIError) -> BatchAnswer {
        let answer = try call("POST", "/v1/batch", body: request.json)
        return try guarded { try BatchAnswer(json: answer) }
    }

    /// The most bytes of writes one request carries.
    static let requestBudget = RequestSizing.budget

    /// Applies writes through the agent, in order, in as many `POST /v1/batch` requests as their
    /// size needs, each under the API's body limit. A merged state too large for one request (a
    /// record grown past it by merges, in an export or a backup) goes alone through
    /// `POST /v1/import` as a one-line HubSync file: that route streams its body (up to 1 GiB)
    /// and merges the state whole, in one transaction, as an import without an agent does.
    /// Answers whether each write changed something.
    func apply(_ writes: [RecordWrite], budget: Int = requestBudget) throws(CLIError) -> [Bool] {
        var changed: [Bool] = []
        changed.reserveCapacity(writes.count)
        var pending: [RecordWrite] = [], pendingBytes = 0
        func flush() throws(CLIError) {
            guard !pending.isEmpty else { return }
            changed += try batch(BatchRequest(pending)).items.map(\.changed)
            pending.removeAll(keepingCapacity: true)
            pendingBytes = 0
        }
        for write in writes {
            let size = RequestSizing.size(of: write)
            if size <= budget {
                if pendingBytes + size > budget { try flush() }
                pending.append(write)
                pendingBytes += size
                continue
            }
            try flush()
            guard case .merge = write else {
                throw .usage("\(write.key): this write is \(byteText(size)); a write may make a record at most "
                    + "\(Store.maxRecordBytes / 1024) KiB, so it was not written — split the value over several records")
            }
            changed.append(try importAlone(write))
        }
        try flush()
        return changed
    }

    /// Merges one state through `POST /v1/import` (format `hubsync`, the record's key as the
    /// file's name); answers whether it changed the record.
    func importAlone(_ write: RecordWrite) throws(CLIError) -> Bool {
        var object = write.json
        object["op"] = nil // an export's line: the state and its digest, no operation
        let line = Array((JSON.serialize(.object(object)) + "\n").utf8)
        let answer = try call("POST", "/v1/import?format=hubsync&name=\(pathSegment(write.key.description))", upload: line)
        guard case .int(let written) = answer.objectValue?["written"] ?? .null else {
            throw .failure("the agent's answer to the import of \(write.key) has no \"written\" count")
        }
        return written > 0
    }
}

/// What one write did: the record after it and the sequence number of the change (nil when
/// nothing changed).
struct WriteOutcome {
    var record: Value
    var sequence: Int64?
    var throughAgent: Bool
    /// The store written, when this process wrote it (no agent runs).
    var store: Store? = nil
}

/// Applies one write, stated as `RecordWrite`'s JSON form, on whichever path holds the
/// directory: through the running agent, else on the store under the writer lock. Both parse
/// it with the one function, `RecordWrite(parsing:)`.
/// With `ifMissing`, a record never written is refused with that message (exit 2) first.
func perform(_ object: [String: Value], in directory: DataDirectory, ifMissing: String? = nil) throws(CLIError) -> WriteOutcome {
    let write = try guarded { try RecordWrite(parsing: object) }
    do {
        switch try directory.writer() {
        case .agent(let agent):
            if let ifMissing {
                let path = "/v1/records/\(pathSegment(write.key.collection))/\(pathSegment(write.key.id))"
                if try guarded({ try agent.client.request("GET", path) }).status == 404 { throw CLIError.usage(ifMissing) }
            }
            // Known before sending: a write over what one request carries is over the record limit.
            let size = RequestSizing.size(of: write)
            if size > AgentClient.requestBudget {
                throw CLIError.usage("\(write.key): this write is \(byteText(size)); a write may make a record at most "
                    + "\(Store.maxRecordBytes / 1024) KiB; nothing was written — split the value over several records")
            }
            let answer: BatchAnswer
            do {
                answer = try agent.batch(BatchRequest([write], includeRecords: true))
            } catch var refusal {
                // The agent names a batch's refused write by its index; this one write is the command's own.
                if refusal.message.hasPrefix("operations[0]: ") { refusal.message.removeFirst("operations[0]: ".count) }
                throw refusal
            }
            guard let result = answer.items.first else { throw CLIError.failure("the agent's answer has no result for \(write.key)") }
            return WriteOutcome(record: result.record ?? .null, sequence: result.sequence, throughAgent: true)
        case .direct(let store):
            if let ifMissing, try guarded({ try store.get(write.key) })?.causalLength ?? 0 == 0 { throw CLIError.usage(ifMissing) }
            let result = try guarded { try store.apply([write]) }
            guard let state = try guarded({ try store.get(write.key) }) else { throw CLIError.failure("no record \(write.key)") }
            return WriteOutcome(record: recordJSON(state), sequence: result.first?.sequence, throughAgent: false, store: store)
        }
    } catch let error as CLIError where error.code == .notFound || error.code == .noConflict {
        // A write naming a record that is not there, or resolving a field with no conflict,
        // changes nothing: bad input, as the rule has it.
        throw CLIError(.invalidInput, error.message, cause: error)
    } catch let error as CLIError {
        throw error
    } catch {
        throw CLIError(error)
    }
}

/// Prints the result of a write: the record and the sequence number the change got.
func report(format: OutputFormat, verb: String, outcome: WriteOutcome) {
    if format == .json {
        guard case .object(var o) = outcome.record else { return }
        o["sequence"] = outcome.sequence.map { .int($0) } ?? .null
        o["changed"] = .bool(outcome.sequence != nil)
        printJSON(.object(o))
        return
    }
    if Quiet.isOn { return }
    let r = outcome.record.objectValue ?? [:]
    let key = "\(r["collection"]?.stringValue ?? "?")/\(r["id"]?.stringValue ?? "?")"
    guard let sequence = outcome.sequence else { return print("\(key): unchanged") }
    print("\(verb) \(key) (change #\(sequence)\(outcome.throughAgent ? ", through the running agent" : ""))")
}
