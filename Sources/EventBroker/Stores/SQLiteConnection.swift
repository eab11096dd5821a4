import CSQLite

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One open SQLite database: a thin, SQL-free wrapper of the C API that turns result codes into ``SQLiteFailure``.
///
/// Not thread-safe: its owner serializes calls. The connection is opened without SQLite's own mutexes
/// (`SQLITE_OPEN_NOMUTEX`) for that reason. Statements it prepares must be finalized before ``close()``;
/// a forgotten one only delays the release of the file until it is deinitialized (`sqlite3_close_v2`).
final class SQLiteConnection {
    let path: String
    private var handle: OpaquePointer?

    /// Opens (or creates) the database file for reading and writing.
    init(path: String) throws(SQLiteFailure) {
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let failure = SQLiteFailure(code: code, handle: handle, context: "open")
            sqlite3_close_v2(handle)
            throw failure
        }
        sqlite3_extended_result_codes(handle, 1)
        self.handle = handle
    }

    deinit {
        self.close()
    }

    /// Whether SQLite fell back to read-only access (it does so silently for a write-protected file).
    var isReadOnly: Bool {
        guard let handle = self.handle else { return true }
        return sqlite3_db_readonly(handle, "main") == 1
    }

    /// Whether a transaction is open (SQLite rolls some back by itself, e.g. on a full disk).
    var isInTransaction: Bool {
        guard let handle = self.handle else { return false }
        return sqlite3_get_autocommit(handle) == 0
    }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE.
    var changes: Int {
        guard let handle = self.handle else { return 0 }
        return Int(sqlite3_changes(handle))
    }

    /// Runs one or more statements that take no parameters, ignoring any rows.
    func execute(_ sql: String) throws(SQLiteFailure) {
        let handle = try self.openHandle(context: sql)
        let code = sqlite3_exec(handle, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw SQLiteFailure(code: code, handle: handle, context: sql) }
    }

    /// Compiles one statement. `persistent` tells SQLite the statement is kept and reused.
    func prepare(_ sql: String, persistent: Bool = false) throws(SQLiteFailure) -> SQLiteStatement {
        let handle = try self.openHandle(context: sql)
        var statement: OpaquePointer?
        let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let code = sqlite3_prepare_v3(handle, sql, -1, flags, &statement, nil)
        guard code == SQLITE_OK, let statement else {
            sqlite3_finalize(statement)
            throw SQLiteFailure(
                code: code == SQLITE_OK ? SQLITE_MISUSE : code, handle: handle, context: sql)
        }
        return SQLiteStatement(statement, sql: sql)
    }

    /// Closes the connection; idempotent.
    func close() {
        guard let handle = self.handle else { return }
        self.handle = nil
        sqlite3_close_v2(handle)
    }

    private func openHandle(context: String) throws(SQLiteFailure) -> OpaquePointer {
        guard let handle = self.handle else {
            throw SQLiteFailure(code: SQLITE_MISUSE, message: "the database is closed", context: context)
        }
        return handle
    }
}

/// A failed SQLite call: its extended result code, SQLite's message, and the operating system's error number.
struct SQLiteFailure: Error, CustomStringConvertible {
    /// The extended result code (`SQLITE_IOERR_WRITE`, …); `code & 0xff` is the primary one.
    let code: Int32
    let message: String
    /// `errno` of the last failed system call, 0 when none.
    let systemErrorNumber: Int32
    /// The statement, or the call, that failed.
    let context: String

    init(code: Int32, message: String, systemErrorNumber: Int32 = 0, context: String) {
        self.code = code
        self.message = message
        self.systemErrorNumber = systemErrorNumber
        self.context = context
    }

    init(code: Int32, handle: OpaquePointer?, context: String) {
        var message = String(cString: sqlite3_errstr(code))
        var systemErrorNumber: Int32 = 0
        if let handle {
            if let text = sqlite3_errmsg(handle) { message = String(cString: text) }
            systemErrorNumber = sqlite3_system_errno(handle)
        }
        self.init(code: code, message: message, systemErrorNumber: systemErrorNumber, context: context)
    }

    var primaryCode: Int32 { self.code & 0xff }

    /// SQLITE_FULL, or an I/O error whose system call failed for lack of space or quota.
    var isDiskFull: Bool {
        if self.primaryCode == SQLITE_FULL { return true }
        return self.primaryCode == SQLITE_IOERR
            && (self.systemErrorNumber == ENOSPC || self.systemErrorNumber == EDQUOT)
    }

    /// Another connection holds a lock this one needs.
    var isLocked: Bool { self.primaryCode == SQLITE_BUSY || self.primaryCode == SQLITE_LOCKED }

    /// The file is not a database, or its content is damaged.
    var isCorrupt: Bool { self.primaryCode == SQLITE_NOTADB || self.primaryCode == SQLITE_CORRUPT }

    /// The file or its directory cannot be opened, created or written.
    var isUnwritable: Bool {
        switch self.primaryCode {
        case SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH:
            return true
        case SQLITE_IOERR:
            return self.systemErrorNumber == EACCES || self.systemErrorNumber == EROFS
                || self.systemErrorNumber == EPERM
        default:
            return false
        }
    }

    var description: String {
        var text = "\(self.message) (SQLite code \(self.code)"
        if self.systemErrorNumber != 0 {
            text += ", \(String(cString: strerror(self.systemErrorNumber)))"
        }
        return text + ")"
    }
}
