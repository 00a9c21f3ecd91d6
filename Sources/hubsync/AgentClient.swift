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
    var host: String { client.host }
    var port: UInt16 { client.port }

    /// The agent whose process `pid` holds the directory's writer lock, once its API is bound.
    static func running(in dir: DataDirectory, pid: Int32) -> AgentClient? {
        LocalAPIClient.running(in: dir, pid: pid).map(AgentClient.init)
    }

    /// A request that must succeed (2xx); otherwise the agent's error message becomes the CLI's.
    func call(_ method: String, _ path: String, body: Value? = nil) throws(CLIError) -> Value {
        let (status, value): (Int, Value)
        do { (status, value) = try client.request(method, path, body: body) } catch { throw .failure(error.message) }
        guard (200..<300).contains(status) else {
            let message = value.objectValue?["error"]?.stringValue ?? "the agent answered HTTP \(status)"
            throw CLIError(status == 400 ? .invalidInput : .refused, message)
        }
        return value
    }

    /// `POST /v1/batch`: applies the writes through the agent.
    func batch(_ request: BatchRequest) throws(CLIError) -> BatchAnswer {
        let answer = try call("POST", "/v1/batch", body: request.json)
        return try guarded { try BatchAnswer(json: answer) }
    }
}

/// What one write did: the record after it and the sequence number of the change (nil when
/// nothing changed).
struct WriteOutcome {
    var record: Value
    var sequence: Int64?
    var throughAgent: Bool
}

/// Applies one write, stated as `RecordWrite`'s JSON form, on whichever path holds the
/// directory: through the running agent, else on the store under the writer lock. Both parse
/// it with the one function, `RecordWrite(parsing:)`.
func perform(_ object: [String: Value], in directory: DataDirectory) throws(CLIError) -> WriteOutcome {
    let write = try guarded { try RecordWrite(parsing: object) }
    switch try directory.writer() {
    case .agent(let agent):
        let answer = try agent.batch(BatchRequest([write], includeRecords: true))
        guard let result = answer.items.first else { throw .failure("the agent's answer has no result for \(write.key)") }
        return WriteOutcome(record: result.record ?? .null, sequence: result.sequence, throughAgent: true)
    case .direct(let store):
        let result = try guarded { try store.apply([write]) }
        guard let state = try guarded({ try store.get(write.key) }) else { throw .failure("no record \(write.key)") }
        return WriteOutcome(record: recordJSON(state), sequence: result.first?.sequence, throughAgent: false)
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
    let r = outcome.record.objectValue ?? [:]
    let key = "\(r["collection"]?.stringValue ?? "?")/\(r["id"]?.stringValue ?? "?")"
    guard let sequence = outcome.sequence else { return print("\(key): unchanged") }
    print("\(verb) \(key) (change #\(sequence)\(outcome.throughAgent ? ", through the running agent" : ""))")
}
