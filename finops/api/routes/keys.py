"""Proxy API keys through finops.keys.service (the same rules as `finops keys`); a new key is shown once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from finops.api.auth import Admin, Reader, RoleRoute
from finops.api.context import ApiContext, get_context
from finops.api.errors import ERROR_RESPONSES, invalid, not_found
from finops.api.pagination import Page, Paging
from finops.api.params import PRINTABLE, TAG_PATTERN, TagQuery
from finops.keys.models import ApiKeyRow
from finops.keys.service import KeyError_, create_key, list_keys, revoke_key
from finops.proxy.errors import ProxyError

router = APIRouter(route_class=RoleRoute, tags=["keys"], responses=ERROR_RESPONSES)
Context = Annotated[ApiContext, Depends(get_context)]


class KeyView(BaseModel):
    id: str
    # The key's first characters, to tell keys apart; never the key.
    prefix: str
    team: str
    feature: str | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: str = Field(max_length=128, pattern=TAG_PATTERN)
    feature: str | None = Field(default=None, max_length=128, pattern=TAG_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=128, pattern=PRINTABLE)


class CreatedKeyView(KeyView):
    key: str = Field(description="the key itself: shown in this answer only, never again")


def _view(row: ApiKeyRow) -> KeyView:
    return KeyView(
        id=row.id,
        prefix=row.key_prefix,
        team=row.team,
        feature=row.default_feature,
        name=row.name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@router.get("/keys", summary="list proxy API keys (never the keys themselves)")
def get_keys(
    _principal: Reader,
    context: Context,
    page: Paging,
    team: TagQuery = None,
    include_revoked: bool = False,
) -> Page[KeyView]:
    with context.unit_of_work() as session:
        rows = [r for r in list_keys(session, include_revoked) if team is None or r.team == team]
        items, next_offset = page.slice(rows)
        views = [_view(r) for r in items]
    return Page[KeyView](items=views, limit=page.limit, offset=page.offset, next_offset=next_offset)


@router.post("/keys", status_code=201, summary="create a proxy API key for a team; the key is shown once")
def post_key(_principal: Admin, context: Context, body: KeyCreate, response: Response) -> CreatedKeyView:
    with context.unit_of_work() as session:
        try:
            created = create_key(session, context.config, body.team, body.feature, body.name)
        except ProxyError as exc:
            raise invalid(exc.message, exc.param) from exc
        row = session.get(ApiKeyRow, created.key_id)
        assert row is not None
        view = CreatedKeyView(**_view(row).model_dump(), key=created.key)
    # Neither a browser nor a proxy in between may keep the one copy of the key.
    response.headers["Cache-Control"] = "no-store"
    return view


@router.post("/keys/{key_id}/revoke", summary="revoke a proxy API key (proxies drop it within a refresh)")
def post_revoke(
    _principal: Admin, context: Context, key_id: Annotated[str, Path(max_length=32, pattern=PRINTABLE)]
) -> KeyView:
    with context.unit_of_work() as session:
        try:
            row = revoke_key(session, key_id)
        except KeyError_ as exc:
            raise not_found(str(exc), "key_id") from exc
        return _view(row)
