public import HubSyncCore
import HubSyncCrypto

extension ReconItem {
    /// The item of a record from what the store keeps beside it (key, last clock, digest),
    /// without decoding the state: the same item as ``ReconItem/item(for:digest:)``.
    static func item(key: RecordKey, updated: Timestamp, digest: [UInt8]) -> ReconItem {
        var input: [UInt8] = []
        input.reserveCapacity(key.collection.utf8.count + key.id.utf8.count + 34)
        input.append(contentsOf: key.collection.utf8)
        input.append(0)
        input.append(contentsOf: key.id.utf8)
        input.append(0)
        input.append(contentsOf: digest)
        return ReconItem(time: updated.rawValue, id: ItemID(bytes: Blake2b.hash(input, outputLength: 32))!)
    }
}
