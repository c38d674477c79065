/// One result row, its values in PostgreSQL's text format.
public struct PostgresRow: Sendable {
    /// The column names of the result, shared by all its rows.
    public let columns: [String]
    /// Each column's text, nil for SQL NULL.
    public let values: [String?]

    /// The raw text of the column at `index`; nil for NULL.
    public subscript(index: Int) -> String? { values[index] }

    /// The raw text of the column called `name`; nil for NULL or a missing column.
    public subscript(name: String) -> String? {
        columns.firstIndex(of: name).flatMap { values[$0] }
    }

    /// Decodes a non-NULL column; throws ``ColumnDecodingError/unexpectedNull(column:)`` on NULL.
    public func decode<T: PostgresDecodable>(_ type: T.Type, at index: Int) throws -> T {
        guard let text = values[index] else { throw ColumnDecodingError.unexpectedNull(column: columns[index]) }
        guard let value = T(postgresText: text) else {
            throw ColumnDecodingError.invalidText(column: columns[index], type: String(describing: T.self))
        }
        return value
    }

    /// Decodes a nullable column: NULL becomes nil.
    public func decode<T: PostgresDecodable>(_ type: T?.Type, at index: Int) throws -> T? {
        values[index] == nil ? nil : try decode(T.self, at: index)
    }

    public func decode<T: PostgresDecodable>(_ type: T.Type, column name: String) throws -> T {
        try decode(type, at: index(of: name))
    }

    public func decode<T: PostgresDecodable>(_ type: T?.Type, column name: String) throws -> T? {
        try decode(type, at: index(of: name))
    }

    private func index(of name: String) throws -> Int {
        guard let index = columns.firstIndex(of: name) else { throw ColumnDecodingError.noSuchColumn(name) }
        return index
    }
}
