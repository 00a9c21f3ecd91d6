import Foundation
import HubSyncBase
import HubSyncTestSupport
import Testing

@Suite struct AtomicFileTests {
    let folder = TemporaryDirectory(prefix: "hubsync-atomic")

    private func entries() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    }

    private func contents(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func theFileAppearsOnlyOnCommitWithItsModeAndNoTemporaryIsLeft() throws {
        let path = folder.path + "/key"
        let file = try AtomicFile(path: path, mode: 0o600)
        try file.write(Array("first ".utf8))
        try file.write(Array("second".utf8))
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try entries().count == 1)
        try file.commit()
        #expect(contents(path) == "first second")
        #expect(try entries() == ["key"])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func replacingSwapsTheWholeFile() throws {
        let path = folder.path + "/settings"
        try DataDirectory.writeAtomically(Array("old and long".utf8), toPath: path)
        try DataDirectory.writeAtomically(Array("new".utf8), toPath: path)
        #expect(contents(path) == "new")
        #expect(try entries() == ["settings"])
    }

    @Test func withoutReplacingAnExistingFileIsKept() throws {
        let path = folder.path + "/identity"
        try DataDirectory.writeAtomically(Array("mine".utf8), toPath: path)
        let file = try AtomicFile(path: path)
        try file.write(Array("theirs".utf8))
        #expect(try file.commit(replacing: false) == false)
        #expect(contents(path) == "mine")
        let fresh = try AtomicFile(path: folder.path + "/other")
        try fresh.write(Array("new".utf8))
        #expect(try fresh.commit(replacing: false))
        #expect(contents(folder.path + "/other") == "new")
    }

    @Test func aFileDroppedBeforeItsCommitLeavesNothing() throws {
        let path = folder.path + "/export.jsonl"
        do {
            let file = try AtomicFile(path: path)
            try file.write(Array("half a line".utf8))
            #expect(FileManager.default.fileExists(atPath: file.temporaryPath))
        }
        #expect(try entries().isEmpty)
    }

    @Test func aFolderThatIsNotThereIsASystemCallError() {
        #expect(throws: SystemCallError.self) { try AtomicFile(path: folder.path + "/missing/file") }
    }
}
