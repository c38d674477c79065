import Synchronization

/// Bounds the number of distinct `tenant_id` values one metric family may carry.
///
/// The first `limit` tenants seen keep their own value; later ones are recorded as
/// ``TenantLabelGuard/otherTenant``. The reserved values ``anonymousTenant`` and
/// ``otherTenant`` never count against the limit.
public final class TenantLabelGuard: Sendable {
    public static let anonymousTenant = "anonymous"
    public static let otherTenant = "__other__"

    public let limit: Int
    private let admitted: Mutex<Set<String>>

    public init(limit: Int) {
        precondition(limit >= 0, "tenant label limit must not be negative")
        self.limit = limit
        self.admitted = Mutex([])
    }

    /// The label value to record for `tenant`, admitting it if the family has room.
    public func labelValue(for tenant: String) -> String {
        if tenant == Self.anonymousTenant || tenant == Self.otherTenant { return tenant }
        return admitted.withLock { set in
            if set.contains(tenant) { return tenant }
            guard set.count < limit else { return Self.otherTenant }
            set.insert(tenant)
            return tenant
        }
    }

    /// How many distinct tenants hold a label of their own.
    public var admittedCount: Int { admitted.withLock { $0.count } }
}
