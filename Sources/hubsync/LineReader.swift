import Foundation
import HubSyncBase

/// Reads a file line by line with getline(3), without holding the file in memory.
final class LineReader {
    private let file: UnsafeMutablePointer<FILE>
    private var buffer: UnsafeMutablePointer<CChar>?
    private var capacity = 0
    private(set) var lineNumber = 0

    init(path: String) throws(CLIError) {
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR {
            throw .usage("\(path) is a folder; give a file (or - for standard input)")
        }
        guard let f = fopen(path, "r") else {
            throw .failure("cannot open \(path): \(Errno.message(errno))")
        }
        file = f
    }

    deinit {
        free(buffer)
        fclose(file)
    }

    /// The next line's bytes without its line break, or nil at the end of the file.
    func next() -> UnsafeRawBufferPointer? {
        let n = getline(&buffer, &capacity, file)
        guard n >= 0, let buffer else { return nil }
        lineNumber += 1
        var len = n
        while len > 0, buffer[len - 1] == 0x0A || buffer[len - 1] == 0x0D { len -= 1 }
        return UnsafeRawBufferPointer(start: buffer, count: len)
    }
}
