"""A use case's result is kept as JSON on its key's record (`stored`) and comes back as its type for
a replay (`rebuilt`): nested results, tuples, and records kept before a field was added."""
from __future__ import annotations

import json
from dataclasses import replace

from app.ledger.idempotency import rebuilt, stored
from app.receiving.services import ItemReceived, LineProgress, Missing, ParcelClosed, ParcelProgress
from app.refunds.services import RefundStatus


def _through_json(data: dict) -> dict:
    """What the record's JSON column gives back."""
    return json.loads(json.dumps(data))


def test_a_result_comes_back_as_its_type() -> None:
    first = ItemReceived(7, "LP00000007", "TEE-BLU-M", "Tee", None, 3, ("extra_item", "serial_mismatch"), "mismatch",
                         LineProgress(3, 2, 2), ParcelProgress(2, 3), 5)
    data = _through_json(stored(first))
    assert "replayed" not in data and data["line"] == {"id": 3, "got": 2, "expected": 2}
    again = rebuilt(ItemReceived, data)
    assert again == replace(first, replayed=True) and again.replayed
    assert isinstance(again.exceptions, tuple) and isinstance(again.line, LineProgress)
    assert rebuilt(ItemReceived, _through_json(stored(replace(first, line=None)))).line is None


def test_a_record_kept_as_a_plain_object_replays_as_the_result() -> None:
    """The JSON close_parcel's record has always held: the result's fields, `missing` a list of objects."""
    data = {"parcel_id": 4, "missing": [{"sku": "TEE-BLU-M", "quantity": 1}], "return_still_open": False}
    assert rebuilt(ParcelClosed, data) == ParcelClosed(4, (Missing("TEE-BLU-M", 1),), return_still_open=False,
                                                       replayed=True)
    assert _through_json(stored(rebuilt(ParcelClosed, data))) == {**data, "blind": False}  # a field added since: its default


def test_a_field_the_record_lacks_takes_its_default() -> None:
    assert rebuilt(RefundStatus, {"refund_id": 9, "status": "rejected"}) == RefundStatus(9, "rejected", replayed=True)
