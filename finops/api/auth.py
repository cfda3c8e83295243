"""Who is calling: a Bearer management token, its role, and for a team token its team.

Every endpoint declares the roles it admits with :func:`allow` (``Admin``, ``Reader``, ``AnyRole``);
routers use :class:`RoleRoute`, which refuses an endpoint that declares none and writes the roles into
the OpenAPI document as ``x-finops-roles``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from finops.api.context import ApiContext, get_context
from finops.api.errors import ApiError, forbidden, invalid
from finops.api.tokens import ROLES, Role, find_active_token

_bearer = HTTPBearer(auto_error=False, description="a management token from `finops tokens create`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    role: Role
    team: str | None  # set for (and only for) team tokens

    def team_scope(self, requested: str | None) -> str | None:
        """The team a read is limited to: a team token is held to its own, whatever it asked for."""
        if self.role != "team":
            return requested
        if requested is not None and requested != self.team:
            raise forbidden("a team token reads only its own team", "team")
        return self.team


def authenticate(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    context: Annotated[ApiContext, Depends(get_context)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiError(
            401,
            "unauthorized",
            "a management token is required (Authorization: Bearer ...)",
            headers=_CHALLENGE,
        )
    secret = context.secret()
    with context.unit_of_work() as session:
        row = find_active_token(session, secret, credentials.credentials)
        principal = None if row is None else Principal(row.id, row.role, row.team)  # type: ignore[arg-type]
    if principal is None:
        # The same answer for unknown, revoked and proxy keys: nothing to learn by probing.
        raise ApiError(401, "unauthorized", "unknown or revoked management token", headers=_CHALLENGE)
    return principal


class RoleGate:
    """A dependency that admits the given roles; the roles are read back to document the endpoint."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = roles

    def __call__(self, request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in self.roles:
            raise forbidden(f"role {principal.role} may not do this; allowed: {', '.join(self.roles)}")
        _reject_unknown_query(request)
        return principal


def _reject_unknown_query(request: Request) -> None:
    """A misspelt filter (``?tem=ads``) would silently widen a read; say so instead. Checked after the
    token, so that a caller without one learns nothing about the endpoint."""
    known: frozenset[str] | None = getattr(request.scope.get("route"), "query_names", None)
    if known is None:
        return
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise invalid(
            f"unknown query parameter {unknown[0]!r}; known: {', '.join(sorted(known))}", unknown[0]
        )


def allow(*roles: Role) -> Callable[..., Principal]:
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise ValueError(f"allow() needs roles among {ROLES}, got {roles}")
    return RoleGate(tuple(roles))


EVERYONE: tuple[Role, ...] = ("admin", "finance", "team")
Admin = Annotated[Principal, Depends(allow("admin"))]
Reader = Annotated[Principal, Depends(allow("admin", "finance"))]
AnyRole = Annotated[Principal, Depends(allow(*EVERYONE))]


ROLES_EXTENSION = "x-finops-roles"


def _role_gates(dependant: Dependant) -> Iterator[RoleGate]:
    for dep in dependant.dependencies:
        if isinstance(dep.call, RoleGate):
            yield dep.call
        yield from _role_gates(dep)


def _query_names(dependant: Dependant) -> Iterator[str]:
    for param in dependant.query_params:
        yield param.alias
    for dep in dependant.dependencies:
        yield from _query_names(dep)


class RoleRoute(APIRoute):
    """A route that must declare its roles; they are documented on its OpenAPI operation."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        gates = list(_role_gates(self.dependant))
        if not gates:
            raise RuntimeError(f"endpoint {path} declares no roles (use finops.api.auth.allow)")
        # Several gates on one endpoint: a caller must pass them all, so only their intersection gets in.
        admitted = [r for r in gates[0].roles if all(r in g.roles for g in gates)]
        self.openapi_extra = {**(self.openapi_extra or {}), ROLES_EXTENSION: admitted}
        self.query_names = frozenset(_query_names(self.dependant))
        roles_line = f"Roles: {', '.join(admitted)}."
        self.description = f"{self.description}\n\n{roles_line}" if self.description else roles_line
