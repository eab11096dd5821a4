import CSQLite

/// A compiled SQLite statement: bind parameters (1-based), step through rows, read columns (0-based), reset.
///
/// Owned by whoever prepared it on a ``SQLiteConnection``, and used under the same serialization. Reusable: after
/// ``run()`` or a failed ``step()`` it is reset and its bindings cleared. ``finalize()`` is idempotent and also
/// happens on deinitialization.
final class SQLiteStatement {
    /// Tells SQLite to copy bound text at once (`SQLITE_TRANSIENT`), so the Swift buffer may go away.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private var handle: OpaquePointer?
    private let sql: String

    init(_ handle: OpaquePointer, sql: String) {
        self.handle = handle
        self.sql = sql
    }

    deinit {
        self.finalize()
    }

    func finalize() {
        guard let handle = self.handle else { return }
        self.handle = nil
        sqlite3_finalize(handle)
    }

    // MARK: Binding

    func bind(_ value: Int64, at index: Int32) throws(SQLiteFailure) {
        let handle = try self.openHandle()
        try self.check(sqlite3_bind_int64(handle, index, value))
    }

    func bind(_ value: Int, at index: Int32) throws(SQLiteFailure) {
        try self.bind(Int64(value), at: index)
    }

    func bind(_ value: Bool, at index: Int32) throws(SQLiteFailure) {
        try self.bind(Int64(value ? 1 : 0), at: index)
    }

    func bind(_ value: String, at index: Int32) throws(SQLiteFailure) {
        let handle = try self.openHandle()
        var value = value
        let code = value.withUTF8 { bytes in
            // A nil base address would bind NULL, so an empty string gets a real (empty) one.
            guard let base = bytes.baseAddress, bytes.count > 0 else {
                return sqlite3_bind_text(handle, index, "", 0, Self.transient)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) { text in
                sqlite3_bind_text(handle, index, text, Int32(bytes.count), Self.transient)
            }
        }
        try self.check(code)
    }

    func bind(_ value: String?, at index: Int32) throws(SQLiteFailure) {
        guard let value else { return try self.bindNull(at: index) }
        try self.bind(value, at: index)
    }

    func bind(_ value: Int?, at index: Int32) throws(SQLiteFailure) {
        guard let value else { return try self.bindNull(at: index) }
        try self.bind(value, at: index)
    }

    func bindNull(at index: Int32) throws(SQLiteFailure) {
        let handle = try self.openHandle()
        try self.check(sqlite3_bind_null(handle, index))
    }

    // MARK: Stepping

    /// Advances to the next row: true when there is one to read, false when the statement is done. On failure the
    /// statement is reset (its bindings kept) and the error thrown.
    func step() throws(SQLiteFailure) -> Bool {
        let handle = try self.openHandle()
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW:
            return true
        case SQLITE_DONE:
            return false
        default:
            let failure = SQLiteFailure(code: code, handle: sqlite3_db_handle(handle), context: self.sql)
            sqlite3_reset(handle)
            throw failure
        }
    }

    /// Steps to the end, ignoring rows, then resets.
    func run() throws(SQLiteFailure) {
        defer { self.reset() }
        while try self.step() {}
    }

    /// Rewinds the statement and clears its bindings, ready for the next use.
    func reset() {
        guard let handle = self.handle else { return }
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    // MARK: Columns of the current row

    func isNull(at column: Int32) -> Bool {
        guard let handle = self.handle else { return true }
        return sqlite3_column_type(handle, column) == SQLITE_NULL
    }

    func int64(at column: Int32) -> Int64 {
        guard let handle = self.handle else { return 0 }
        return sqlite3_column_int64(handle, column)
    }

    /// The column as UTF-8 text (an empty string for NULL); embedded NUL characters are kept.
    func text(at column: Int32) -> String {
        guard let handle = self.handle, let text = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    private func openHandle() throws(SQLiteFailure) -> OpaquePointer {
        guard let handle = self.handle else {
            throw SQLiteFailure(code: SQLITE_MISUSE, message: "the statement is finalized", context: self.sql)
        }
        return handle
    }

    private func check(_ code: Int32) throws(SQLiteFailure) {
        guard code != SQLITE_OK else { return }
        throw SQLiteFailure(code: code, handle: self.handle.flatMap { sqlite3_db_handle($0) }, context: self.sql)
    }
}
