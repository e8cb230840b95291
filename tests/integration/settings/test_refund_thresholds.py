"""The refund approval threshold an admin sets in the console governs the dock's dispositions: for
every return, or for one merchant's or one sales channel's (the lower when both apply)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from app.disposition.services import confirm_disposition
from app.errors import NotPermitted, ValidationFailed
from app.refunds.services import RefundPolicy
from app.settings.models import RefundThreshold
from app.settings.services import remove_threshold, set_threshold
from tests.helpers import new_key, refund_of
from tests.integration.disposition.test_inspect_and_confirm import _inspected

ENV = RefundPolicy(Decimal("250.00"))  # what the environment says; the shirt on the return refunds 20.00


def _confirm(session, world, **kw) -> str:  # type: ignore[no-untyped-def]
    worker = world.actor("worker")
    unit_id = _inspected(session, world, worker, **kw)
    confirm_disposition(session, worker, unit_id=unit_id, idempotency_key=new_key(), policy=ENV)
    return refund_of(session, unit_id).status


def _set(session, world, scope, target_id, amount):  # type: ignore[no-untyped-def]
    return set_threshold(session, world.actor("admin"), scope=scope, target_id=target_id, amount=amount,
                         idempotency_key=new_key())


def test_without_a_stored_threshold_the_environments_applies(session, world):
    assert _confirm(session, world, on_return=True) == "released"


def test_a_merchants_threshold_holds_its_returns_refund(session, world):
    _set(session, world, "merchant", world.merchant.id, "10.00")
    assert _confirm(session, world, on_return=True) == "pending_approval"


def test_another_merchants_threshold_does_not_touch_this_return(session, world):
    _set(session, world, "merchant", world.other_merchant.id, "10.00")
    assert _confirm(session, world, on_return=True) == "released"


def test_the_lower_of_the_merchants_and_the_channels_applies(session, world):
    _set(session, world, "merchant", world.merchant.id, "500.00")
    _set(session, world, "channel", world.channel.id, "15.00")
    assert _confirm(session, world, on_return=True) == "pending_approval"


def test_a_specific_threshold_wins_over_the_one_for_every_return(session, world):
    _set(session, world, "all", None, "5.00")
    _set(session, world, "merchant", world.merchant.id, "100.00")
    assert _confirm(session, world, on_return=True) == "released"


def test_the_one_for_every_return_covers_a_unit_without_a_return(session, world):
    _set(session, world, "all", None, "5.00")
    assert _confirm(session, world, product="shirt") == "pending_approval"


def test_removing_a_threshold_brings_the_broader_one_back(session, world):
    saved = _set(session, world, "merchant", world.merchant.id, "10.00")
    row = session.query(RefundThreshold).filter_by(scope=saved.scope).one()
    remove_threshold(session, world.actor("admin"), threshold_id=row.id, idempotency_key=new_key())
    assert _confirm(session, world, on_return=True) == "released"


def test_setting_again_replaces_and_a_retry_changes_nothing(session, world):
    admin, key = world.actor("admin"), new_key()
    first = set_threshold(session, admin, scope="merchant", target_id=world.merchant.id, amount="10", idempotency_key=key)
    again = set_threshold(session, admin, scope="merchant", target_id=world.merchant.id, amount="10", idempotency_key=key)
    assert again.replayed and not first.replayed
    _set(session, world, "merchant", world.merchant.id, "30.50")
    assert [(t.scope, t.amount) for t in session.query(RefundThreshold)] == [(first.scope, Decimal("30.50"))]


@pytest.mark.parametrize("amount", ["", "-1", "abc", "1e9", "NaN", "12.345", "Infinity", "1000000.01"])
def test_a_bad_amount_is_refused_and_nothing_is_stored(session, world, amount):
    with pytest.raises(ValidationFailed):
        _set(session, world, "all", None, amount)
    assert session.query(RefundThreshold).count() == 0


@pytest.mark.parametrize("scope,target", [("merchant", None), ("channel", 999999), ("warehouse", 1), ("merchant", 999999)])
def test_a_bad_target_is_refused(session, world, scope, target):
    with pytest.raises(ValidationFailed):
        _set(session, world, scope, target, "10")
    assert session.query(RefundThreshold).count() == 0


@pytest.mark.parametrize("username", ["worker", "super", "partner"])
def test_only_an_admin_sets_thresholds(session, world, username):
    with pytest.raises(NotPermitted):
        set_threshold(session, world.actor(username), scope="all", target_id=None, amount="10", idempotency_key=new_key())
