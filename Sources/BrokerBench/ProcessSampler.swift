#if canImport(Glibc)
    import Glibc
#endif

/// Reads a process's resident memory and CPU time from `/proc` (Linux).
public struct ProcessSample: Sendable {
    /// Resident set size, bytes, summed over the sampled processes.
    public let residentBytes: Int
    /// User plus system CPU time, seconds, summed.
    public let cpuSeconds: Double

    public static func read(_ pids: [Int32]) -> ProcessSample? {
        guard !pids.isEmpty else { return nil }
        var resident = 0
        var cpu = 0.0
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        for pid in pids {
            guard let status = Self.file("/proc/\(pid)/status"), let stat = Self.file("/proc/\(pid)/stat") else {
                return nil
            }
            for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
                let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
                resident += kilobytes * 1024
            }
            // Fields after the command name (which may hold spaces) start at field 3; utime and stime are 14 and 15.
            if let close = stat.lastIndex(of: ")") {
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) {
                    cpu += (user + system) / ticks
                }
            }
        }
        return ProcessSample(residentBytes: resident, cpuSeconds: cpu)
    }

    private static func file(_ path: String) -> String? {
        guard let handle = fopen(path, "r") else { return nil }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, handle)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
