"""The templates' `a.b` on a dict (app/web/templating.py) gives what Jinja's own way gives."""
from __future__ import annotations

import pytest
from flask import Flask
from jinja2 import Environment, StrictUndefined, UndefinedError

from app.web.templating import TemplateEnvironment


def _both(source: str, **context: object) -> tuple[str, str]:
    """The source rendered by Jinja's own environment and by ours."""
    plain, fast = Environment(), TemplateEnvironment(Flask(__name__))
    return plain.from_string(source).render(**context), fast.from_string(source).render(**context)


@pytest.mark.parametrize("source, context", [
    ("{{ d.lpn }}", {"d": {"lpn": "LPN-000042"}}),
    ("{{ d.missing }}|", {"d": {"lpn": "x"}}),
    ("{{ d.items() | list }}", {"d": {"items": 3, "a": 1}}),  # a key named like a dict method: the method wins, as in Jinja
    ("{{ d.get('a') }}", {"d": {"get": "key", "a": 1}}),
    ("{{ d.a.b }}", {"d": {"a": {"b": 2}}}),
    ("{{ o.real }}", {"o": 5}),
    ("{{ d['lpn'] }}", {"d": {"lpn": "y"}}),
])
def test_attribute_of_a_dict_renders_as_jinja_renders_it(source: str, context: dict) -> None:
    plain, fast = _both(source, **context)
    assert fast == plain


def test_a_missing_key_is_still_undefined() -> None:
    env = TemplateEnvironment(Flask(__name__), undefined=StrictUndefined)
    with pytest.raises(UndefinedError):
        env.from_string("{{ d.nope }}").render(d={"lpn": "x"})
