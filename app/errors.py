"""Typed domain errors. Services raise these; views turn them into clear messages."""
from __future__ import annotations


class DomainError(Exception):
    """A refused action: nothing was written. `message` is for the person on the dock."""

    status_code = 422
    code = "refused"

    def __init__(self, message: str, **figures: object) -> None:
        """`message` is English, with `%(name)s` where each of `figures` goes (mark it with
        `app.words.N_`): a screen says it in the person's language (`app.web.i18n.spoken`), the API
        as written."""
        text = message % figures if figures else message
        super().__init__(text)
        self.message = text
        self.template, self.figures = message, figures


class ValidationFailed(DomainError):
    """The input is not acceptable (bad value, missing reason, unknown code)."""

    code = "invalid"


class NotFound(DomainError):
    """The thing does not exist, or the actor may not see it (indistinguishable on purpose)."""

    status_code = 404
    code = "not_found"


class NotPermitted(DomainError):
    """The actor's role does not allow this action."""

    status_code = 403
    code = "forbidden"


class IllegalTransition(DomainError):
    """The requested state change is not an edge of the state machine."""

    status_code = 409
    code = "illegal_transition"


class Unavailable(DomainError):
    """Something the action needs (photo storage) cannot be reached just now: nothing was kept."""

    status_code = 503
    code = "unavailable"


class Conflict(DomainError):
    """Somebody else got there first (stale version, already decided, duplicate)."""

    status_code = 409
    code = "conflict"


class AlreadyDisposed(Conflict):
    """The unit has its disposition already (`lpn`, `state`): it is released or routed, not disposed again."""

    def __init__(self, message: str, *, lpn: str, state: str, **figures: object) -> None:
        super().__init__(message, **figures)
        self.lpn, self.state = lpn, state


class StaleVersion(Conflict):
    """The record changed since the actor loaded it."""

    code = "stale"


class FourEyesViolation(NotPermitted):
    """A person tried to approve what they inspected or overrode themselves."""

    code = "four_eyes"


class IdempotencyKeyReused(Conflict):
    """The same idempotency key was sent for a different action."""

    code = "idempotency_key_reused"


def require_reason(reason: str | None) -> str:
    """Every decision carries a reason: present, and short enough to read."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A reason is required.")
    if len(reason) > 500:
        raise ValidationFailed("Keep the reason under 500 characters.")
    return reason


class InvalidItems(ValidationFailed):
    """Some items of a call are not acceptable: `errors` names each ({"field": ..., "message": ...});
    nothing of the call was written."""

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.errors = errors
