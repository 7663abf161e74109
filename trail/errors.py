"""The one error type of the request path: services and parsers raise it, each API renders it.

`ApiError` carries an HTTP status, a message for people and, for bad input, the fields at fault
(Starlette's HTTPException). `FieldError` is the 400 that names one field; parsers of every
layer (filters, report queries, collect bodies) raise it or a subclass, so a route never
translates exceptions. The renderers live in `trail.api.pirsch.errors` (Pirsch's
`{"validation": ..., "error": [...]}`) and `trail.api.tinytrail.errors` (the TinyTrail envelope).
"""

from __future__ import annotations


class ApiError(Exception):
    """An answer other than 2xx: `status`, `message`, and `validation` {field: problem}."""

    def __init__(
        self,
        status: int,
        message: str,
        validation: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.validation = validation or {}
        # Extra response headers (Retry-After, CORS on browser routes), added by the renderer.
        self.headers = headers or {}


class FieldError(ApiError):
    """Bad input in one named field: "<field>: <problem>", 400 unless said otherwise."""

    def __init__(self, field: str, problem: str, status: int = 400) -> None:
        super().__init__(status, f"{field}: {problem}", {field: problem})
        self.field = field
        self.problem = problem

    @classmethod
    def many(cls, errors: dict[str, str], what: str) -> FieldError:
        """One error naming every bad field of a `what` (a domain, a client, ...)."""
        field, problem = min(errors.items())
        error = cls(field, problem)
        error.message = f"invalid {what}: " + ", ".join(sorted(errors))
        error.args = (error.message,)
        error.validation = dict(errors)
        return error


def check_fields(errors: dict[str, str], what: str) -> None:
    """Raise the 400 naming every bad field, if any."""
    if errors:
        raise FieldError.many(errors, what)


class RateLimited(ApiError):
    """429 with the seconds to wait (rendered as `Retry-After`); `problem` says which limit."""

    def __init__(
        self,
        retry_after: int,
        problem: str = "rate limit exceeded",
        validation: dict[str, str] | None = None,
    ) -> None:
        message = f"{problem}, retry in {retry_after} s"
        super().__init__(429, message, validation, headers={"retry-after": str(retry_after)})
        self.retry_after = retry_after


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")
