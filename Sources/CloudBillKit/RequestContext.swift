import Hummingbird
import CloudBillInstrumentation
import Logging

/// The request context of every CloudBill service.
public struct CloudBillRequestContext: AttributedRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Who the request is attributed to; authentication fills it in.
    public let attribution: RequestAttribution
    /// The request's `X-Request-ID`, accepted from the caller or made here.
    public var requestID: String
    /// The peer's IP address (no port), for limits per client; nil when unknown.
    public let clientAddress: String?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.clientAddress = source.channel.remoteAddress?.ipAddress
        self.attribution = RequestAttribution()
        self.requestID = ""
    }

    /// Request bodies above this size are refused with 413.
    public var maxUploadSize: Int { 256 * 1024 }

    /// The tenant the request is attributed to, or `anonymous`.
    public var tenant: String { attribution.tenant }
}
