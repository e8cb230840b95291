"""The templates' environment: Flask's, with a cheaper `a.b` on the plain dicts the views pass."""
from __future__ import annotations

from typing import Any

from flask.templating import Environment

_DICT_ATTRIBUTES = frozenset(dir(dict))


class TemplateEnvironment(Environment):
    """`{{ unit.lpn }}` on a dict: Jinja tries the attribute first, and the AttributeError it
    catches before it looks the key up costs more than the lookup (a scan's answer made 25 of
    them). A dict has no attribute of any name outside dir(dict), so for those names the key is
    looked up first: the same result, without the exception. Anything else is Jinja's own way."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)
