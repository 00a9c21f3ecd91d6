public import HubSyncCrypto

/// The household's membership as a pure function of the statements known (protocol/SPEC.md 4.7).
///
/// A device is a member when an accepted add (or the genesis) names it and no effective removal
/// does. A statement is accepted when its signature is valid, its parent (the issuer's own add)
/// is accepted, and no effective removal of its issuer attacks it; a removal of X attacks every
/// statement X issued except those in the removal's own ancestry (the chain of parents from the
/// remover to the founder), and a removal is attacked only by a removal whose issuer is at most
/// as deep in the chain (so a removed device cannot undo its removal by a member closer to the
/// founder by claiming it removed that member first). Labels are found as a grounded fixpoint,
/// so the result depends only on the set of statements, never on the order they arrived in.
/// Removal wins: a removal that stays contested (two devices at the same depth removing each
/// other) still counts, and a removed device is never a member again, whatever adds name it.
public struct MembershipState: Sendable {
    /// The group whose statements count; others are ignored.
    public let groupID: [UInt8]
    /// Every distinct statement with a valid signature for this group, by hash.
    public private(set) var statements: [[UInt8]: MembershipStatement] = [:]
    /// The current members, with their public keys.
    public private(set) var members: [DeviceID: PublicSigningKey] = [:]
    /// Devices removed by an effective removal.
    public private(set) var removed: Set<DeviceID> = []
    /// The founder, once its genesis is known.
    public private(set) var founder: DeviceID?
    /// Hashes of the accepted statements.
    public private(set) var accepted: Set<[UInt8]> = []

    /// For each removed device, the issuers of the removals that count against it.
    public private(set) var removedBy: [DeviceID: Set<DeviceID>] = [:]
    /// How many removals signed by a device with a chain of adds from the founder are known.
    private var groundedRemovals: UInt64 = 0

    /// The key epoch: the number of removals known that a device with a chain of adds from the
    /// founder signed, whether they count or not. It only grows as statements arrive, so every
    /// rotation moves to an epoch no key was granted for before (protocol/SPEC.md 4.7).
    public var keyEpoch: UInt64 { groundedRemovals }

    /// The state of `groupID` given `statements` (invalid and foreign ones are ignored).
    public init(groupID: [UInt8], statements: some Sequence<MembershipStatement> = []) {
        self.groupID = groupID
        for s in statements where s.groupID == groupID && s.isSignatureValid {
            self.statements[s.hash] = s
        }
        recompute()
    }

    /// Adds statements; returns those that were new and valid for this group.
    @discardableResult
    public mutating func insert(_ new: some Sequence<MembershipStatement>) -> [MembershipStatement] {
        var added: [MembershipStatement] = []
        for s in new where s.groupID == groupID && statements[s.hash] == nil && s.isSignatureValid {
            statements[s.hash] = s
            added.append(s)
        }
        if !added.isEmpty { recompute() }
        return added
    }

    /// Whether `device` is a member now.
    public func isMember(_ device: DeviceID) -> Bool { members[device] != nil }

    /// The accepted statement that makes `device` a member (its add, or the genesis): the
    /// credential it names as parent in the statements it signs.
    public func credential(of device: DeviceID) -> MembershipStatement? {
        guard isMember(device) else { return nil }
        return accepted.compactMap { statements[$0] }
            .filter { ($0.kind == .add || $0.kind == .genesis) && $0.subjectDevice == device }
            .min { Hex.encode($0.hash) < Hex.encode($1.hash) }
    }

    /// The accepted statement that made `device` a member (its add, or the genesis), whether or
    /// not it is removed now: a removed device signs with it only the removal of its remover that
    /// makes it a member again (4.7).
    public func standingCredential(of device: DeviceID) -> MembershipStatement? {
        accepted.compactMap { statements[$0] }
            .filter { ($0.kind == .add || $0.kind == .genesis) && $0.subjectDevice == device }
            .min { Hex.encode($0.hash) < Hex.encode($1.hash) }
    }

    /// Every known statement in a fixed order (by hash), for sending or saving.
    public var sortedStatements: [MembershipStatement] {
        statements.sorted { Hex.encode($0.key) < Hex.encode($1.key) }.map(\.value)
    }

    private enum Label { case undecided, accepted, rejected }

    /// The grounded labelling and the member set it gives.
    private mutating func recompute() {
        let zero = [UInt8](repeating: 0, count: 32)
        var removalsOf: [DeviceID: [[UInt8]]] = [:]
        for (hash, s) in statements where s.kind == .remove {
            removalsOf[s.subjectDevice, default: []].append(hash)
        }
        // The ancestry of each removal: the hashes on its parent chain.
        var ancestry: [[UInt8]: Set<[UInt8]>] = [:]
        for hashes in removalsOf.values {
            for hash in hashes {
                var chain: Set<[UInt8]> = []
                var next = statements[hash]!.parent
                while next != zero, !chain.contains(next), let s = statements[next] {
                    chain.insert(next)
                    next = s.parent
                }
                ancestry[hash] = chain
            }
        }
        var label: [[UInt8]: Label] = statements.mapValues { _ in .undecided }
        var changed = true
        while changed {
            changed = false
            for (hash, s) in statements where label[hash] == .undecided {
                let attackers = (removalsOf[s.issuerDevice] ?? []).filter { attacker in
                    let chain = ancestry[attacker] ?? []
                    guard !chain.contains(hash) else { return false }
                    // A removal is attacked only by a removal from a device at most as deep.
                    return s.kind != .remove || chain.count <= (ancestry[hash]?.count ?? 0)
                }
                let support: Label
                if s.kind == .genesis {
                    support = .accepted
                } else if let p = statements[s.parent], p.kind != .remove, p.subjectDevice == s.issuerDevice {
                    support = label[s.parent]!
                } else {
                    support = .rejected
                }
                let next: Label
                if support == .rejected || attackers.contains(where: { label[$0] == .accepted }) {
                    next = .rejected
                } else if support == .accepted && attackers.allSatisfy({ label[$0] == .rejected }) {
                    next = .accepted
                } else {
                    continue
                }
                label[hash] = next
                changed = true
            }
        }
        // Devices that are, or may be, members: removals they issued that stay contested count.
        var possible: Set<DeviceID> = []
        for (hash, s) in statements where s.kind != .remove && label[hash] != .rejected {
            possible.insert(s.subjectDevice)
        }
        // An accepted removal always counts (also of a device whose own chain was already cut, as
        // when a removal takes the devices the removed one enrolled with it); a contested one
        // counts between devices that may be members; a rejected one still stands (removing the
        // remover never re-admits its victims) unless it removed a device on the chain of the
        // removal that undid it: the remover itself, or a device it descends from.
        var removed: Set<DeviceID> = []
        var removedBy: [DeviceID: Set<DeviceID>] = [:]
        var grounded = 0
        for (hash, s) in statements where s.kind == .remove {
            let isGrounded = self.isGrounded(hash)
            if isGrounded { grounded += 1 }
            let counts: Bool
            switch label[hash]! {
            case .accepted: counts = true
            case .undecided: counts = possible.contains(s.issuerDevice) && possible.contains(s.subjectDevice)
            case .rejected: counts = isGrounded && !isVoided(hash, label: label, removalsOf: removalsOf, ancestry: ancestry)
            }
            if counts {
                removed.insert(s.subjectDevice)
                removedBy[s.subjectDevice, default: []].insert(s.issuerDevice)
            }
        }
        var members: [DeviceID: PublicSigningKey] = [:]
        var founder: DeviceID?
        for (hash, s) in statements where label[hash] == .accepted {
            if s.kind == .genesis { founder = s.subjectDevice }
            if s.kind != .remove, !removed.contains(s.subjectDevice) { members[s.subjectDevice] = s.subject }
        }
        self.removed = removed
        self.removedBy = removedBy
        self.groundedRemovals = UInt64(grounded)
        self.members = members
        self.founder = founder
        self.accepted = Set(label.filter { $0.value == .accepted }.keys)
    }

    /// Whether the statement's chain of parents reaches a genesis through adds, each naming the
    /// issuer of the statement below it: its issuer was a member once.
    private func isGrounded(_ hash: [UInt8]) -> Bool {
        var seen: Set<[UInt8]> = []
        var current = hash
        while let s = statements[current], seen.insert(current).inserted {
            if s.kind == .genesis { return true }
            guard let p = statements[s.parent], p.kind != .remove, p.subjectDevice == s.issuerDevice else { return false }
            current = s.parent
        }
        return false
    }

    /// Whether a rejected removal is void: the statement on its chain that was undone (it, or the
    /// nearest ancestor an accepted removal attacks) was undone by a removal whose own chain
    /// holds the removal's subject, so removing the remover gives back exactly that chain.
    private func isVoided(_ hash: [UInt8], label: [[UInt8]: Label], removalsOf: [DeviceID: [[UInt8]]],
                          ancestry: [[UInt8]: Set<[UInt8]>]) -> Bool {
        guard let victim = statements[hash]?.subjectDevice else { return true }
        var seen: Set<[UInt8]> = []
        var current = hash
        while let s = statements[current], seen.insert(current).inserted, s.kind != .genesis {
            let undoing = (removalsOf[s.issuerDevice] ?? []).filter { attacker in
                guard label[attacker] == .accepted, let chain = ancestry[attacker], !chain.contains(current) else { return false }
                return s.kind != .remove || chain.count <= (ancestry[current]?.count ?? 0)
            }
            if !undoing.isEmpty {
                return undoing.contains { attacker in
                    (ancestry[attacker] ?? []).contains { statements[$0]?.subjectDevice == victim }
                }
            }
            current = s.parent
        }
        return false
    }
}
