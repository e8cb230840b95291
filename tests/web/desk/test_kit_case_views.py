"""A kit's unit at the desk: its case names each component's check as the handheld asked it, and a
supervisor's re-grade keeps the components' answers (issue 18, item 4)."""
from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from app.inspection.models import Inspection
from app.ledger.models import ReturnUnit
from tests.conftest import login
from tests.integration.anomalies.test_missing_component_flags import inspect, kit_unit

HX = {"HX-Request": "true"}


def test_a_kits_case_names_its_components_and_a_regrade_keeps_their_answers(client, session, world):
    unit_id = kit_unit(session, world)
    inspect(session, world, unit_id, part_1=True, part_2=False, part_3=True)
    login(client, "super")
    page = client.get(f"/desk/units/{unit_id}").get_data(as_text=True)
    answers = re.findall(r'<li class="(?:yes|no)">([✓✗]) ([^<]*)</li>', page)
    assert ("✗", "Charger") in answers and ("✓", "Camera body") in answers, answers
    assert "part_" not in re.sub(r'name="q_part_\d"', "", page)  # no raw keys shown
    assert 'name="q_part_2"' in page  # the re-grade form asks them too
    version = session.scalar(select(ReturnUnit.version).where(ReturnUnit.id == unit_id))
    session.rollback()
    regraded = client.post(f"/desk/units/{unit_id}/regrade", headers=HX,
                           data={"grade": "C", "packaging": "opened", "q_part_1": "yes", "q_part_3": "yes",
                                 "reason": "lens scratched", "key": uuid.uuid4().hex, "version": str(version),
                                 "context": "unit"})
    assert regraded.status_code == 200, regraded.get_data(as_text=True)[:400]
    latest = session.scalars(select(Inspection).where(Inspection.unit_id == unit_id).order_by(Inspection.id.desc())).first()
    assert {k: v for k, v in latest.answers.items() if k.startswith("part_")} == {"part_1": True, "part_2": False,
                                                                                   "part_3": True}


def test_a_missing_component_is_explained_in_spanish(client, session, world):
    unit_id = kit_unit(session, world)
    inspect(session, world, unit_id, part_1=True, part_2=False, part_3=True)
    login(client, "super")
    page = client.get(f"/desk/units/{unit_id}", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Falta Charger en el kit CAM-KIT-1 (10\u00a0% menos de reembolso)" in page
    assert "missing from kit" not in page
