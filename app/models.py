"""Import every model so that the metadata (and Alembic) sees the whole schema."""
from app.anomalies.models import AnomalyFlag
from app.api.models import ApiKey
from app.auth.models import SignInFailure, User, UserSession
from app.catalog.models import Category, Location, Merchant, PartnerOrg, Product, ProductBarcode, SalesChannel, Warehouse, partner_org_merchants
from app.disposition.models import DispositionRule, ReasonCode, RuleSetVersion
from app.exceptions.models import ReturnException
from app.intake.models import CsvImport
from app.inspection.models import ChecklistVersion, Inspection, Photo
from app.labels.models import Printer, PrintJob
from app.ledger.models import AuditEntry, Balance, Counter, IdempotencyRecord, LedgerEntry, OutboxEvent, ReturnUnit
from app.orders.models import CarrierTracking, Customer, Order, OrderLine, Rma, RmaLine, ShippedSerial
from app.receiving.models import Parcel
from app.reconciliation.models import ReconCorrection, ReconSnapshot, ReconSnapshotLine, ReconSource, ReconVariance
from app.refunds.models import RefundEvent, RefundTrigger
from app.settings.models import RefundThreshold, Setting
from app.webhooks.models import FeedPosition, WebhookDelivery, WebhookEndpoint

__all__ = [
    "AnomalyFlag", "ApiKey", "CsvImport", "RefundThreshold", "Setting", "FeedPosition", "WebhookDelivery", "WebhookEndpoint",
    "AuditEntry", "Balance", "CarrierTracking", "Category", "ChecklistVersion", "Counter", "Customer", "DispositionRule",
    "IdempotencyRecord", "Inspection", "LedgerEntry", "Location", "Merchant", "Order", "OrderLine", "OutboxEvent",
    "PartnerOrg", "Photo", "PrintJob", "Printer", "Product", "ProductBarcode", "Parcel", "ReasonCode", "RefundEvent", "RefundTrigger",
    "ReturnException", "ReturnUnit", "Rma", "RmaLine", "RuleSetVersion", "SalesChannel", "ShippedSerial", "SignInFailure", "User", "UserSession",
    "Warehouse", "partner_org_merchants", "ReconCorrection", "ReconSnapshot", "ReconSnapshotLine", "ReconSource",
    "ReconVariance",
]
