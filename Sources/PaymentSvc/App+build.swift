import CloudBillKit
import Foundation
import Hummingbird

/// The `service` label value of this service.
let serviceName = "payment-service"

/// Builds the application as it runs; tests build it through here too.
///
/// - Parameter staleAfter: how long a payment may stay `processing` before the reconciler
///   settles it (`CLOUDBILL_PAYMENT_STALE_AFTER_SECONDS`, default 30).
func buildApplication(configuration: ServiceConfiguration, staleAfter: Duration? = nil) throws -> some ApplicationProtocol {
    var service = try ServiceApplication(
        name: serviceName, configuration: configuration, storage: .postgresAndRedis(migrations: PaymentSchema.migrations),
        domainFaults: [.paymentDeclines, .processorErrors]
    )
    let repository = PaymentRepository(database: service.requireDatabase)
    let processor = CardProcessor(faults: service.faults, ledger: service.requireDatabase)
    let settlement = InvoiceSettlement(repository: repository, client: service.client, billingURL: configuration.billingURL, logger: service.logger)
    let environmentStaleAfter = ProcessInfo.processInfo.environment["CLOUDBILL_PAYMENT_STALE_AFTER_SECONDS"].flatMap(Int.init)
        .flatMap { (1...3600).contains($0) ? Duration.seconds($0) : nil }
    service.services.append(PaymentReconciler(
        repository: repository, processor: processor, settlement: settlement, metrics: service.metrics.business,
        logger: service.logger, staleAfter: staleAfter ?? environmentStaleAfter ?? .seconds(30), schemaReady: service.schemaReady
    ))
    let receipts = ReceiptSender(client: service.client, notificationURL: configuration.notificationURL, logger: service.logger)
    service.services.append(receipts)
    PaymentController(
        repository: repository,
        processor: processor,
        settlement: settlement,
        receipts: receipts,
        client: service.client,
        configuration: configuration,
        metrics: service.metrics.business
    ).addRoutes(to: service.router)
    return service.makeApplication()
}
