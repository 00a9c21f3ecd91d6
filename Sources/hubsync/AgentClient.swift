import Foundation
import HubSyncCore
import HubSyncStore
import HubSyncAgent

/// Percent-encodes one path segment.
func pathSegment(_ s: String) -> String {
    s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
}

/// The CLI's view of the running agent: the API client, with errors as the CLI reports them.
struct AgentClient {
    let client: LocalAPIClient
    var host: String { client.host }
    var port: UInt16 { client.port }

    static func running(in dir: DataDirectory) -> AgentClient? {
        LocalAPIClient.running(inDataDirectory: dir.path).map(AgentClient.init)
    }

    /// A request that must succeed (2xx); otherwise the agent's error message becomes the CLI's.
    func call(_ method: String, _ path: String, body: Value? = nil) throws(CLIError) -> Value {
        let (status, value): (Int, Value)
        do { (status, value) = try client.request(method, path, body: body) } catch { throw .failure(error.message) }
        guard (200..<300).contains(status) else {
            let message = value.objectValue?["error"]?.stringValue ?? "the agent answered HTTP \(status)"
            throw CLIError(message: message, status: status == 400 ? 2 : 1)
        }
        return value
    }
}

/// Applies a write through the running agent, if one runs: returns the record JSON it answered
/// (with `sequence` and `changed`), or nil when no agent runs on the data directory.
func applyThroughAgent(_ op: RecordOperation, directory: DataDirectory) throws(CLIError) -> Value? {
    guard let agent = AgentClient.running(in: directory) else { return nil }
    let key = op.key
    let path = "/v1/records/\(pathSegment(key.collection))/\(pathSegment(key.id))"
    switch op {
    case .put(_, let patch): return try agent.call("PATCH", path, body: .object(patch))
    case .delete: return try agent.call("DELETE", path)
    case .undelete: return try agent.call("POST", path + "/undelete")
    case .insert(_, let field, let elements):
        return try agent.call("POST", path + "/add", body: ["field": .string(field), "elements": .array(elements)])
    case .remove(_, let field, let elements):
        return try agent.call("POST", path + "/remove", body: ["field": .string(field), "elements": .array(elements)])
    case .resolve(_, let field, let value):
        return try agent.call("POST", path + "/resolve", body: ["field": .string(field), "value": value])
    }
}

/// Prints the agent's answer to a write like `report` prints a local one.
func reportAgentAnswer(format: OutputFormat, verb: String, answer: Value) {
    if format == .json { printJSON(answer); return }
    let o = answer.objectValue ?? [:]
    let key = "\(o["collection"]?.stringValue ?? "?")/\(o["id"]?.stringValue ?? "?")"
    if case .int(let seq) = o["sequence"] ?? .null {
        print("\(verb) \(key) (change #\(seq), through the running agent)")
    } else {
        print("\(key): unchanged")
    }
}
