"""API-key authentication and role checks as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from switchboard.access import Action, ApiKey, KeyCache, authorize
from switchboard.errors import Unauthenticated

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="sb_<id>_<secret>")
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer sb_<id>_<secret>")


def require(action: Action) -> Callable[..., ApiKey | None]:
    """A dependency that lets the request through only with a key whose role grants ``action``."""

    def dependency(
        request: Request,
        header_key: Annotated[str | None, Security(_api_key_header)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> ApiKey | None:
        if not request.app.state.settings.auth_required:
            return None
        token = header_key or (bearer.credentials if bearer is not None else None)
        if not token:
            raise Unauthenticated("missing API key: send X-API-Key or Authorization: Bearer")
        keys: KeyCache = request.app.state.keys
        key = keys.authenticate(token)
        authorize(key, action)
        return key

    return dependency


CanClassify = Annotated[ApiKey | None, Depends(require(Action.classify))]
CanReview = Annotated[ApiKey | None, Depends(require(Action.review))]
CanWorkCases = Annotated[ApiKey | None, Depends(require(Action.cases))]
CanAdmin = Annotated[ApiKey | None, Depends(require(Action.admin))]
