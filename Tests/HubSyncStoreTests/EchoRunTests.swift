import Foundation
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Testing

/// A session pushing to a peer skips, unread, a stretch of the log that holds only what that
/// peer sent (``Store/echoesOnly(of:after:)``); every stretch it skips must be one the log read
/// would have skipped.
@Suite struct EchoRunTests {
    let dir = TemporaryDirectory()

    /// Each stretch the store says holds only echoes of a peer, the log read finds so too.
    func expectAgreesWithTheLog(_ store: Store, peers: [DeviceID], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let last = try store.lastSequence()
        for peer in peers {
            for after in 0...last {
                guard let skipped = store.echoesOnly(of: peer, after: after) else { continue }
                #expect(skipped > after && skipped <= last, sourceLocation: sourceLocation)
                let read = try store.rawChanges(after: after, limit: Int(skipped - after), excludingEchoesOf: peer)
                #expect(read.states.isEmpty, "after \(after): the log holds changes for \(peer.hex.prefix(4))", sourceLocation: sourceLocation)
                #expect(read.lastSequence == skipped, sourceLocation: sourceLocation)
            }
        }
    }

    @Test func onlyARunOfOnePeersEchoesIsSkipped() throws {
        let store = try Store(path: "\(dir.path)/s.sqlite", device: device(1))
        let a = try Store(path: "\(dir.path)/a.sqlite", device: device(2))
        let c = try Store(path: "\(dir.path)/c.sqlite", device: device(3))
        func states(_ from: Store, _ ids: [String]) throws -> [RecordState] { try ids.map { try #require(try from.get(key("memories", $0))) } }

        try store.apply(.put(key("memories", "local"), ["text": "mine"]))  // 1
        for id in ["a1", "a2", "a3"] { try a.apply(.put(key("memories", id), ["text": "from a"])) }
        try store.write(.merge(try states(a, ["a1", "a2", "a3"]), from: device(2)))  // 2...4, echoes of a
        #expect(store.echoesOnly(of: device(2), after: 1) == 4)
        #expect(store.echoesOnly(of: device(2), after: 3) == 4)
        #expect(store.echoesOnly(of: device(2), after: 4) == nil, "nothing known past the run: the log is read")
        #expect(store.echoesOnly(of: device(2), after: 0) == nil, "the local change before it is read")
        #expect(store.echoesOnly(of: device(3), after: 1) == nil, "a's echoes are c's news")
        try expectAgreesWithTheLog(store, peers: [device(2), device(3)])

        for id in ["c1", "c2"] { try c.apply(.put(key("memories", id), ["text": "from c"])) }
        try store.write(.merge(try states(c, ["c1", "c2"]), from: device(3)))  // 5, 6
        #expect(store.echoesOnly(of: device(3), after: 4) == 6)
        #expect(store.echoesOnly(of: device(2), after: 1) == nil)
        try expectAgreesWithTheLog(store, peers: [device(2), device(3)])

        // A merge that is not exactly what a sent (a conflict with a local edit) ends the run.
        try store.apply(.put(key("memories", "a1"), ["text": "edited here"]))  // 7
        try a.apply(.put(key("memories", "a1"), ["text": "edited there"]))
        try a.apply(.put(key("memories", "a4"), ["text": "from a"]))
        try store.write(.merge(try states(a, ["a4", "a1"]), from: device(2)))  // 8 echo, 9 conflict
        #expect(try store.get(key("memories", "a1"))?.hasConflicts == true)
        #expect(store.echoesOnly(of: device(2), after: 7) == nil)
        try expectAgreesWithTheLog(store, peers: [device(2), device(3)])

        // A store opened anew knows no run: its sessions read the log.
        try a.apply(.put(key("memories", "a5"), ["text": "from a"]))
        try store.write(.merge(try states(a, ["a5"]), from: device(2)))  // 10
        #expect(store.echoesOnly(of: device(2), after: 9) == 10)

        // A commit this store did not publish (another instance on the file wrote it) leaves a
        // gap in the sequences it saw: the run starts anew after it, and the change in the gap
        // is read and sent.
        let other = try Store(path: store.path, device: device(1))
        #expect(other.echoesOnly(of: device(2), after: 9) == nil, "a store opened anew knows no run")
        try other.apply(.put(key("memories", "between"), ["text": "written beside"]))  // 11, unseen here
        for id in ["a6", "a7"] { try a.apply(.put(key("memories", id), ["text": "from a"])) }
        try store.write(.merge(try states(a, ["a6", "a7"]), from: device(2)))  // 12, 13
        #expect(store.echoesOnly(of: device(2), after: 9) == nil, "the change at 11 is not skipped")
        #expect(store.echoesOnly(of: device(2), after: 11) == 13)
        try expectAgreesWithTheLog(store, peers: [device(2), device(3)])
    }
}
