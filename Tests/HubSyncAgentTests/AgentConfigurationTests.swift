import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncTestSupport
import Testing

/// config.json as the agent, `PUT /v1/config` and the CLI's backup commands read it.
@Suite struct AgentConfigurationTests {
    let folder = TemporaryDirectory(prefix: "hubsync-config")

    func parse(_ bytes: [UInt8]) throws(ValidationFailure) -> AgentConfiguration {
        try AgentConfiguration.parse(Data(bytes), path: "config.json")
    }

    @Test func commentsAreBlankedAndOffsetsAreTheFilesOwn() throws {
        let text = "// a comment, ünïcode too\n{\"repair_interval_seconds\": 77}\n"
        #expect(try parse(Array(text.utf8)).repairInterval == .seconds(77))
        #expect(try parse([0xEF, 0xBB, 0xBF] + Array(text.utf8)).repairInterval == .seconds(77), "a byte-order mark is skipped")
        // A byte that is not UTF-8, even in a comment, is said with its offset.
        var bytes = Array(text.utf8)
        bytes[5] = 0xFF
        #expect(throws: ValidationFailure("config.json: byte 5 is not part of UTF-8 text; save the file as UTF-8, or remove it to use the defaults")) {
            try parse(bytes)
        }
    }

    @Test func bytesThatAreNotUTF8AreRefusedWithTheirOffset() {
        var bytes = Array("// first line\n{\"listen\": \"127.0.0.1:0\", \"api\": \"127.0.0.1:".utf8)
        let offset = bytes.count
        bytes += [0xC3, 0x28] + Array("\"}".utf8)
        do {
            _ = try parse(bytes)
            Issue.record("invalid UTF-8 was accepted")
        } catch {
            #expect(error.message.contains("config.json") && error.message.contains("byte \(offset)") && error.message.contains("UTF-8"),
                    "\(error.message)")
        }
    }

    @Test(arguments: [
        (#"{"api": "0.0.0.0:7401"}"#, "loopback"),
        (#"{"api": "127.0.0.1:70000"}"#, "port of 0–65535"),
        (#"{"listen": "myhost:7400"}"#, "IP address"),
        (#"{"listen": "7400"}"#, "HOST:PORT"),
        (#"{"backup": {"targets": ["local:relative/dir"]}}"#, "absolute path"),
    ])
    func addressesAndTargetsAreCheckedAsTheFlagsAre(text: String, words: String) {
        #expect(throws: ValidationFailure.self) { try parse(Array(text.utf8)) }
        do { _ = try parse(Array(text.utf8)) } catch { #expect(error.message.contains(words), "\(error.message)") }
    }

    @Test func aSettingOfTheWrongKindSaysWhatItTakes() {
        for (text, words) in [(#"{"api": 7401}"#, "\"api\" takes a string HOST:PORT"),
                              (#"{"repair_interval_seconds": -5}"#, "a whole number of seconds, 1 or more"),
                              (#"{"colour": "blue"}"#, "unknown setting \"colour\"")] {
            do {
                _ = try parse(Array(text.utf8))
                Issue.record("\(text) was accepted")
            } catch {
                #expect(error.message.contains(words), "\(error.message)")
            }
        }
    }

    @Test func aBackupTargetInsideADataDirectoryIsRefused() throws {
        let data = folder.path + "/device"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try Data("key".utf8).write(to: URL(fileURLWithPath: data + "/" + DataDirectory.identityFile))
        for target in ["local:\(data)", "local:\(data)/backups/mine", "\(data)/../device/x"] {
            let text = #"{"backup": {"targets": ["\#(target)"]}}"#
            do {
                _ = try parse(Array(text.utf8))
                Issue.record("\(target) was accepted")
            } catch {
                #expect(error.message.contains("data directory"), "\(error.message)")
            }
        }
        // One repository twice, one inside another, a folder of other files: refused at once,
        // not at every backup.
        let usb = folder.path + "/usb"
        try FileManager.default.createDirectory(atPath: folder.path + "/photos", withIntermediateDirectories: true)
        try Data("a photo".utf8).write(to: URL(fileURLWithPath: folder.path + "/photos/p.jpg"))
        for (targets, words) in [([usb, usb + "//"], "the same folder"), ([usb, usb + "/inner"], "one is inside the other"),
                                 ([folder.path + "/photos"], "holds other files (p.jpg)")] {
            let list = targets.map { "\"local:\($0)\"" }.joined(separator: ", ")
            do {
                _ = try parse(Array(#"{"backup": {"targets": [\#(list)]}}"#.utf8))
                Issue.record("\(targets) was accepted")
            } catch {
                #expect(error.message.contains(words), "\(error.message)")
            }
        }
        // Beside it is fine.
        #expect(try parse(Array(#"{"backup": {"targets": ["local:\#(folder.path)/usb"]}}"#.utf8)).backup?.targets == ["local:\(folder.path)/usb"])
    }
}
