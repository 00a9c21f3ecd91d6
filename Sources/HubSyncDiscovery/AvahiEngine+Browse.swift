internal import CHubAvahi
import Foundation

extension AvahiEngine {
    /// Starts browsing for our service type on every interface, once per client.
    func browse(_ c: OpaquePointer) {
        guard browser == nil else { return }
        browser = avahi_service_browser_new(
            c, AvahiIfIndex(AVAHI_IF_UNSPEC), AvahiProtocol(AVAHI_PROTO_UNSPEC), configuration.serviceType, nil,
            AvahiLookupFlags(0), { b, interface, proto, event, name, type, domain, flags, userdata in
                AvahiEngine.from(userdata).browsed(b, interface, proto, event, name, type, domain)
            }, context)
        if browser == nil { scheduleRetry(afterMilliseconds: Self.milliseconds(configuration.retryInterval)) }
    }

    func browsed(_ b: OpaquePointer?, _ interface: AvahiIfIndex, _ proto: AvahiProtocol, _ event: AvahiBrowserEvent,
                 _ name: UnsafePointer<CChar>?, _ type: UnsafePointer<CChar>?, _ domain: UnsafePointer<CChar>?) {
        switch event {
        case AVAHI_BROWSER_NEW:
            guard let name, let client else { return }
            let text = String(cString: name)
            if text == currentServiceName { return } // our own advert
            seen[text, default: []].insert(Self.key(interface, proto))
            // The resolver answers once (found or failure) and is freed in its callback.
            _ = avahi_service_resolver_new(
                client, interface, proto, name, type, domain, proto, AvahiLookupFlags(0),
                { r, interface, proto, event, name, type, domain, host, address, port, txt, flags, userdata in
                    AvahiEngine.from(userdata).resolved(r, interface, event, name, address, port, txt)
                }, context)
        case AVAHI_BROWSER_REMOVE:
            guard let name else { return }
            let text = String(cString: name)
            guard var where_ = seen[text] else { return }
            where_.remove(Self.key(interface, proto))
            if where_.isEmpty {
                seen.removeValue(forKey: text)
                continuation.yield(.lost(name: text))
            } else {
                seen[text] = where_
            }
        case AVAHI_BROWSER_FAILURE:
            if let b { avahi_service_browser_free(b) }
            browser = nil
            scheduleRetry(afterMilliseconds: Self.milliseconds(configuration.retryInterval))
        default:
            break // ALL_FOR_NOW, CACHE_EXHAUSTED
        }
    }

    func resolved(_ r: OpaquePointer?, _ interface: AvahiIfIndex, _ event: AvahiResolverEvent,
                  _ name: UnsafePointer<CChar>?, _ address: UnsafePointer<AvahiAddress>?, _ port: UInt16,
                  _ txt: UnsafeMutablePointer<AvahiStringList>?) {
        defer { if let r { avahi_service_resolver_free(r) } }
        guard event == AVAHI_RESOLVER_FOUND, let name, let address else { return }
        let text = String(cString: name)
        guard seen[text] != nil else { return } // removed while resolving
        var buffer = [CChar](repeating: 0, count: 64)
        avahi_address_snprint(&buffer, buffer.count, address)
        var host = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if host.lowercased().hasPrefix("fe80:") {
            // A link-local IPv6 address is only dialable with its interface.
            var ifname = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
            if if_indextoname(UInt32(bitPattern: interface), &ifname) != nil {
                host += "%" + String(decoding: ifname.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        var entries: [[UInt8]] = []
        var item = txt
        while let i = item {
            let size = avahi_string_list_get_size(i)
            if let bytes = avahi_string_list_get_text(i) {
                entries.append(Array(UnsafeBufferPointer(start: bytes, count: size)))
            }
            item = avahi_string_list_get_next(i)
        }
        continuation.yield(.found(DiscoveredService(name: text, address: host, port: Int(port),
                                                    txt: TXTRecord.parse(entries), interface: interface)))
    }

    static func key(_ interface: AvahiIfIndex, _ proto: AvahiProtocol) -> Int64 {
        Int64(interface) << 32 | Int64(UInt32(bitPattern: proto))
    }
}
