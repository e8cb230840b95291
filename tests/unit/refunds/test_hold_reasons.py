"""Why a refund waits for a supervisor, in words a supervisor reads on the desk."""
from decimal import Decimal

from app.refunds.domain import hold_reasons


def _reasons(**given) -> list[str]:  # type: ignore[no-untyped-def]
    facts = {"amount": Decimal("20"), "threshold": Decimal("250"), "refund_action": "full", "serial_mismatch": False,
             "fraud_flag": False, "overridden": False, **given}
    return hold_reasons(**facts)


def test_a_rule_that_holds_says_so():
    assert _reasons(refund_action="hold") == ["the rule holds it for approval"]


def test_an_override_holds_as_an_override_not_as_the_rule():
    assert _reasons(refund_action="hold", overridden=True) == ["disposition overridden"]


def test_every_reason_is_named_once():
    assert _reasons(amount=Decimal("300"), serial_mismatch=True, fraud_flag=True) == [
        "amount 300 is over the approval threshold 250", "serial mismatch", "fraud flag"]
