"""The handheld's guided inspection through the Flask client (receiving/_unit.html): the category's
grading rules hide the items an answer skips and say what set the grade and each deduction, before
and after saving; a photo keeps the answers typed so far; the refund confirmed is less the deduction."""
from __future__ import annotations

import io
import itertools
import re

from PIL import Image
from sqlalchemy import select

from app.inspection.grading import parse_rules
from app.inspection.models import ChecklistVersion, Inspection
from app.refunds.models import RefundTrigger
from tests.conftest import login

HX = {"HX-Request": "true"}
ITEMS = [{"key": "seal_intact", "label": "Seal intact"}, {"key": "all_parts", "label": "All parts present"},
         {"key": "no_stains", "label": "No stains"}]
RULES = "seal_intact = yes -> grade A, skip the rest\nall_parts = no -> deduct 10%"
_keys = itertools.count(1)


def key() -> str:
    return f"guided-key-{next(_keys):08d}"


def _unit(client, world, session) -> str:  # type: ignore[no-untyped-def]
    """The tee of the world's return received (unit 1, paid 20.00), its category with guided rules."""
    session.add(ChecklistVersion(category="apparel", version=2, note="guided", items=ITEMS, rules=parse_rules(RULES, ITEMS)))
    session.commit()
    login(client, "worker")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers=HX)
    client.post("/receive/scan", data={"code": "RMA-5001", "key": key()}, headers=HX)
    client.post("/receive/scan", data={"code": "036000291452", "key": key()}, headers=HX)
    return "/receive/units/1"


def _fieldset(html: str, item: str) -> str:
    return re.search(rf'<fieldset class="q" data-key="{item}"[^>]*>', html).group()  # type: ignore[union-attr]


def test_the_form_carries_each_items_rules_and_a_seal_intact_hides_the_rest_and_sets_grade_a(client, world, session):
    url = _unit(client, world, session)
    page = client.get(url, headers=HX).get_data(as_text=True)
    # what the page's script needs: each item's rules, the words to say them with
    assert "data-rules='{\"yes\": {\"grade\": \"A\", \"off\": null, \"skip\": true}}'" in _fieldset(page, "seal_intact")
    assert "data-rules='{\"no\": {\"grade\": null, \"off\": \"10%\", \"skip\": false}}'" in _fieldset(page, "all_parts")
    assert "hidden" not in _fieldset(page, "all_parts") and 'id="guide"' in page
    # saved with no grade picked: the seal sets A, the rest is neither asked again nor kept
    saved = client.post(f"{url}/inspect", headers=HX, data={"packaging": "sealed", "q_seal_intact": "yes",
                                                              "q_all_parts": "no", "key": key()})
    html = saved.get_data(as_text=True)
    assert saved.status_code == 200
    assert "Inspection saved: grade A, packaging sealed." in html
    assert "Grade A set by: Seal intact = yes" in html and "The rest of the checklist is skipped." in html
    assert "hidden" in _fieldset(html, "all_parts") and "hidden" in _fieldset(html, "no_stains")
    assert "guide-off" not in html  # the skipped "no" takes nothing off
    # the decision with its Confirm comes before the inspection, which is folded away
    assert html.index('id="confirm-btn"') < html.index('id="inspect-form"') and '<details class="reinspect">' in html
    session.rollback()
    assert session.scalars(select(Inspection.answers).where(Inspection.unit_id == 1)).one() == {"seal_intact": True}


def test_a_missing_part_is_said_before_confirming_and_comes_off_the_refund(client, world, session):
    url = _unit(client, world, session)
    saved = client.post(f"{url}/inspect", headers=HX, data={"grade": "A", "packaging": "sealed", "q_seal_intact": "no",
                                                              "q_all_parts": "no", "q_no_stains": "yes", "key": key()})
    html = saved.get_data(as_text=True)
    assert "All parts present = no: 10% off the refund" in html and "Grade A set by" not in html
    done = client.post(f"{url}/dispose", headers=HX, data={"key": key(), "version": "2"})
    text = done.get_data(as_text=True)
    assert done.status_code == 200 and 'id="done"' in text
    # 20.00 paid on the return, less 10%: 18.00, and the explanation names the answer
    assert "All parts present: no -&gt; less 10%" in text and "18.00" in re.search(r'<p id="done-refund">.*?</p>', text, re.S).group()
    session.rollback()
    assert str(session.scalars(select(RefundTrigger.amount).where(RefundTrigger.unit_id == 1)).one()) == "18.00"


def test_a_photo_keeps_the_answers_typed_so_far(client, world, session):
    url = _unit(client, world, session)
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 80, 120)).save(photo, "JPEG")
    photo.seek(0)
    # the photo form sends the inspection form's answers along (hx-include): they come back as typed
    sent = client.post(f"{url}/photos", headers=HX, content_type="multipart/form-data", data={
        "key": key(), "photo": [(photo, "box.jpg")], "q_seal_intact": "no", "q_all_parts": "no",
        "grade": "C", "packaging": "damaged", "notes": "dented corner"})
    html = sent.get_data(as_text=True)
    assert sent.status_code == 200 and "(1)" in html
    assert 'name="q_seal_intact" value="no" checked' in html and 'name="q_all_parts" value="no" checked' in html
    assert 'name="grade" value="C" checked' in html and 'name="packaging" value="damaged" checked' in html
    assert "dented corner</textarea>" in html and "All parts present = no: 10% off the refund" in html
    assert 'hx-include="#inspect-form' in html
    session.rollback()
    assert session.scalars(select(Inspection.id).where(Inspection.unit_id == 1)).first() is None  # nothing saved yet


def test_the_guided_form_speaks_spanish(client, world, session):
    url = _unit(client, world, session)
    saved = client.post(f"{url}/inspect", headers={**HX, "Accept-Language": "es"},
                        data={"packaging": "sealed", "q_seal_intact": "yes", "key": key()})
    html = saved.get_data(as_text=True)
    assert "Grado A fijado por: Seal intact = sí" in html and "Confirmar: reabastecer" in html
    # The rule that decided is said in Spanish too (its conditions, its disposition).
    why = re.search(r'<p class="why">([^<]*)</p>', html).group(1)
    assert re.fullmatch(r"regla \d+: .*grado A.* -&gt; reabastecer", why), why


def test_an_inspection_refused_is_said_in_spanish_and_changes_nothing(client, world, session):
    """No answer sets the grade and none was picked: the refusal in the worker's language, nothing saved."""
    url = _unit(client, world, session)
    refused = client.post(f"{url}/inspect", headers={**HX, "Accept-Language": "es"},
                          data={"packaging": "sealed", "q_seal_intact": "no", "q_all_parts": "yes", "key": key()})
    assert refused.status_code == 422
    assert "Elige un grado de estado (A, B, C o D)." in refused.get_data(as_text=True)
    assert session.scalars(select(Inspection)).all() == []
