internal import CHubAvahi

extension AvahiEngine {
    /// Adds our service to a fresh (or emptied) entry group and commits it.
    func publish(_ c: OpaquePointer) {
        guard configuration.publishes else { return }
        if group == nil {
            group = avahi_entry_group_new(c, { g, groupState, userdata in
                AvahiEngine.from(userdata).groupChanged(g, groupState)
            }, context)
            guard group != nil else {
                setState(.daemonUnavailable(reason: "avahi-daemon refused an entry group: \(Self.message(avahi_client_errno(c)))"))
                scheduleRetry(afterMilliseconds: Self.milliseconds(configuration.retryInterval))
                return
            }
        }
        guard let group, avahi_entry_group_is_empty(group) != 0 else { return }
        for _ in 0..<8 {
            let name = currentServiceName
            let result = withStringList(TXTRecord.encode(txt)) { list in
                avahi_entry_group_add_service_strlst(
                    group, AvahiIfIndex(AVAHI_IF_UNSPEC), AvahiProtocol(AVAHI_PROTO_UNSPEC), AvahiPublishFlags(0),
                    name, configuration.serviceType, nil, nil, UInt16(configuration.port), list)
            }
            if result == AVAHI_ERR_COLLISION {
                rename()
                continue
            }
            if result < 0 {
                setState(.daemonUnavailable(reason: "avahi-daemon refused the service: \(Self.message(result))"))
                avahi_entry_group_reset(group)
                scheduleRetry(afterMilliseconds: Self.milliseconds(configuration.retryInterval))
                return
            }
            if avahi_entry_group_commit(group) < 0 {
                avahi_entry_group_reset(group)
                scheduleRetry(afterMilliseconds: Self.milliseconds(configuration.retryInterval))
            }
            return
        }
    }

    func groupChanged(_ g: OpaquePointer?, _ groupState: AvahiEntryGroupState) {
        guard let g else { return }
        switch groupState {
        case AVAHI_ENTRY_GROUP_COLLISION:
            // Someone else uses our name: take another random one and publish again.
            rename()
            avahi_entry_group_reset(g)
            if let client { publish(client) }
        case AVAHI_ENTRY_GROUP_FAILURE:
            avahi_entry_group_reset(g)
            scheduleRetry(afterMilliseconds: Self.milliseconds(configuration.retryInterval))
        default:
            break
        }
    }

    func rename() {
        let new = Discovery.randomServiceName()
        nameBox.withLock { $0 = new }
        renamed = true
        setState(.collisionRenamed(newName: new))
    }
}
