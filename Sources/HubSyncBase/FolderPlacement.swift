import Foundation

/// Where a folder given by a person may go: a backup repository or a restored device's data
/// directory never lies inside a HubSync data directory (whose files the agent rewrites, and
/// whose own backups would then hold themselves) nor inside another backup repository (whose
/// `data/` and `index/` folders prune deletes from).
public enum FolderPlacement {
    /// The folders a local backup repository holds.
    public static let repositoryEntries: Set<String> = ["config", "keys", "data", "index", "snapshots", "locks"]

    /// `path` with `.`, `..` and the symbolic links of its longest existing part resolved.
    public static func resolved(_ path: String) -> String {
        var existing = URL(fileURLWithPath: path).standardizedFileURL
        var rest: [String] = []
        while !FileManager.default.fileExists(atPath: existing.path), existing.path != "/" {
            rest.insert(existing.lastPathComponent, at: 0)
            existing.deleteLastPathComponent()
        }
        var url = existing.resolvingSymlinksInPath()
        for part in rest { url.appendPathComponent(part) }
        return url.path
    }

    /// Whether `folder` holds a HubSync device (its identity key or its store).
    public static func isDataDirectory(_ folder: String) -> Bool {
        FileManager.default.fileExists(atPath: folder + "/" + DataDirectory.identityFile)
            || FileManager.default.fileExists(atPath: folder + "/" + DataDirectory.storeFile)
    }

    /// Whether `folder` is a local backup repository (its `config` beside its `keys/`).
    public static func isRepository(_ folder: String) -> Bool {
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: folder + "/config")
            && FileManager.default.fileExists(atPath: folder + "/keys", isDirectory: &isFolder) && isFolder.boolValue
    }

    /// The files of `folder` that no repository holds (sorted), when it is not a repository yet:
    /// a new repository goes into a new or empty folder, or one a crashed `init` left.
    public static func foreignEntries(_ folder: String) -> [String] {
        guard !isRepository(folder) else { return [] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { !repositoryEntries.contains($0) && !$0.hasPrefix(".tmp-") }.sorted()
    }

    /// Why `path` is no place for `what` ("a backup repository", "a restored device"), or nil:
    /// it is, or lies inside, a HubSync data directory, or lies inside a backup repository.
    public static func problem(_ path: String, what: String) -> String? {
        let full = resolved(path)
        var folder = URL(fileURLWithPath: full)
        var isSelf = true
        while true {
            let here = folder.path
            if isDataDirectory(here) {
                return isSelf
                    ? "\(path) is a HubSync data directory; \(what) needs a folder of its own, outside any data directory"
                    : "\(path) is inside the HubSync data directory \(here); \(what) needs a folder outside it (another disk, a NAS mount, or a folder beside it)"
            }
            if !isSelf, isRepository(here) {
                return "\(path) is inside the backup repository \(here); \(what) needs a folder outside it"
            }
            if here == "/" { return nil }
            folder.deleteLastPathComponent()
            isSelf = false
        }
    }
}
