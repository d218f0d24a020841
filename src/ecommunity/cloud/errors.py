"""Errors the API turns into 4xx responses, in one handler (see app.py)."""

from __future__ import annotations

from collections.abc import Mapping


class CloudError(Exception):
    """An error with an HTTP status and a reason for the client."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers the error implies (e.g. Retry-After)."""
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}


class NotAuthenticatedError(CloudError):
    status = 401
    code = "not_authenticated"


class ForbiddenError(CloudError):
    status = 403
    code = "forbidden"


class NotFoundError(CloudError):
    status = 404
    code = "not_found"


class ConflictError(CloudError):
    status = 409
    code = "conflict"


class TooManyRequestsError(CloudError):
    status = 429
    code = "too_many_requests"
