import Foundation
import HubSyncCore
import Testing

/// The foundation issue's scenario: two devices kept in step by export and import, with a
/// conflict surfaced on both and resolved from one.
@Suite struct ScenarioTests {
    let dir = TemporaryDirectory()

    @Test func exportImportSyncsAndSurfacesTheSameConflictOnBothDevices() async throws {
        let a = Device(data: dir.path + "/a"), b = Device(data: dir.path + "/b")
        let idA = try #require(try await a.ok("init", "--name", "a", "--json").json?.objectValue?["device_id"]?.stringValue)
        let idB = try #require(try await b.ok("init", "--name", "b", "--json").json?.objectValue?["device_id"]?.stringValue)
        #expect(idA != idB)
        #expect(try await a.ok("id", "--json").json?.objectValue?["device_id"]?.stringValue == idA)

        try await a.ok("put", "personas", "ada", "--json", #"{"name": "Ada", "traits": ["curious"]}"#)
        try await a.ok("export", dir.path + "/a.jsonl")
        try await b.ok("import", dir.path + "/a.jsonl")
        let onB = try #require(try await b.ok("get", "personas", "ada", "--json").json?.objectValue)
        #expect(onB["fields"] == ["name": "Ada", "traits": ["curious"]])

        try await a.ok("put", "personas", "ada", "--json", #"{"name": "Ada on A"}"#)
        try await b.ok("put", "personas", "ada", "--json", "-", stdin: #"{"name": "Ada on B"}"#)
        try await a.ok("export", dir.path + "/a.jsonl")
        try await b.ok("export", dir.path + "/b.jsonl")
        try await a.ok("import", dir.path + "/b.jsonl")
        try await b.ok("import", dir.path + "/a.jsonl")

        let getA = try await a.ok("get", "personas", "ada", "--json").json?.objectValue?["fields"]
        let getB = try await b.ok("get", "personas", "ada", "--json").json?.objectValue?["fields"]
        #expect(getA == getB)
        let conflictsA = try #require(try await a.ok("conflicts", "--json").json?.arrayValue)
        let conflictsB = try #require(try await b.ok("conflicts", "--json").json?.arrayValue)
        #expect(conflictsA.count == 1)
        #expect(conflictsA == conflictsB)
        let c = try #require(conflictsA.first?.objectValue)
        #expect(c["collection"] == "personas")
        #expect(c["id"] == "ada")
        #expect(c["field"] == "name")
        #expect(Set(c["values"]?.arrayValue ?? []) == ["Ada on A", "Ada on B"])

        try await a.ok("resolve", "personas", "ada", "name", "--value", #""Ada Lovelace""#)
        try await a.ok("export", dir.path + "/a.jsonl")
        try await b.ok("import", dir.path + "/a.jsonl")
        #expect(try await a.ok("conflicts", "--json").json == [])
        #expect(try await b.ok("conflicts", "--json").json == [])
        #expect(try await b.ok("get", "personas", "ada", "--json").json?.objectValue?["fields"]?.objectValue?["name"] == "Ada Lovelace")
    }

    @Test func deletesTravelAndUndeleteBringsEverythingBack() async throws {
        let a = Device(data: dir.path + "/a"), b = Device(data: dir.path + "/b")
        try await a.ok("init"); try await b.ok("init")
        try await a.ok("put", "memories", "m1", "--json", #"{"text": "likes tea", "tags": ["food"]}"#)
        try await a.ok("export", dir.path + "/x.jsonl")
        try await b.ok("import", dir.path + "/x.jsonl")
        try await a.ok("delete", "memories", "m1")
        try await a.ok("export", dir.path + "/x.jsonl")
        try await b.ok("import", dir.path + "/x.jsonl")
        #expect(try await b.ok("list", "memories", "--json").json == [])
        try await b.ok("undelete", "memories", "m1")
        #expect(try await b.ok("get", "memories", "m1", "--json").json?.objectValue?["fields"] == ["text": "likes tea", "tags": ["food"]])
    }

    @Test func listPagesAndStreamsJSON() async throws {
        let a = Device(data: dir.path + "/a")
        try await a.ok("init")
        let lines = (0..<30).map { #"{"collection": "memories", "id": "m\#(String(format: "%02d", $0))", "fields": {"text": "t\#($0)"}}"# }
        try await a.ok("import", "-", stdin: lines.joined(separator: "\n"))
        let page1 = try #require(try await a.ok("list", "memories", "--limit", "10", "--json").json?.arrayValue)
        let page2 = try #require(try await a.ok("list", "memories", "--limit", "10", "--after", "m09", "--json").json?.arrayValue)
        #expect(page1.count == 10 && page2.count == 10)
        #expect(page1.last?.objectValue?["id"] == "m09")
        #expect(page2.first?.objectValue?["id"] == "m10")
        #expect(try await a.ok("list", "memories", "--json").json?.arrayValue?.count == 30)
    }
}
