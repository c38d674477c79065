"""Schemathesis hooks for CloudBill's contract test (schemathesis.toml names this file).

Two rules of the API depend on more than one field or on the deployment, so JSON Schema in
docs/openapi.yaml can say them only in words. Generated bodies that break them are dropped
here rather than sent, so that every request sent as schema-valid really is valid:

- an invoice line's quantity × unit amount, and the sum of the lines, are at most
  10,000,000,000 cents (Billing answers 422 past that);
- a webhook URL (a tenant's `webhook_url`, a webhook notification's `recipient`) must be on
  the deployment's allow-list; scripts/test-contract's fleet allows only
  https://hooks.example.com, and other URLs would be refused with 422 (so would one of
  that origin that is not a well-formed URL: only plain ones are sent).

Only bodies that carry such a value are dropped; everything else is sent as generated.
"""
import re

import schemathesis

MAXIMUM_TOTAL_CENTS = 10_000_000_000
# A plain URL on the allowed origin: what is sent as a valid webhook URL.
ALLOWED_WEBHOOK = re.compile(r"\s*https://hooks\.example\.com/[A-Za-z0-9._~/-]*\s*")


def _over_the_invoice_limit(body):
    lines = body.get("line_items")
    if not isinstance(lines, list):
        return False
    total = 0
    for line in lines:
        if not isinstance(line, dict):
            return False
        quantity, unit = line.get("quantity"), line.get("unit_amount_cents")
        if type(quantity) is not int or type(unit) is not int:
            return False
        amount = quantity * unit
        if amount > MAXIMUM_TOTAL_CENTS:
            return True
        total += amount
    return total > MAXIMUM_TOTAL_CENTS


def _off_the_allow_list(url):
    return isinstance(url, str) and url.strip() != "" and not ALLOWED_WEBHOOK.fullmatch(url)


@schemathesis.hook
def filter_body(ctx, body):
    if not isinstance(body, dict) or ctx.operation is None:
        return True
    path, method = ctx.operation.path, ctx.operation.method.upper()
    if (method, path) == ("POST", "/api/v1/invoices"):
        return not _over_the_invoice_limit(body)
    if (method, path) == ("POST", "/admin/tenants"):
        return not _off_the_allow_list(body.get("webhook_url"))
    if (method, path) == ("POST", "/api/v1/notifications") and body.get("type") == "webhook":
        return not _off_the_allow_list(body.get("recipient"))
    return True
