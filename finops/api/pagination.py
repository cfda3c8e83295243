"""Limit/offset pagination for every list.

A list answers ``{"items": [...], "limit": L, "offset": O, "next_offset": N | null}``; ask again with
``offset=N`` for the next page, until ``next_offset`` is null. Pages are read with one row more than asked,
so ``next_offset`` needs no count query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

T = TypeVar("T")
MAX_LIMIT = 1000
# Beyond any real list, and inside every database's integer range.
MAX_OFFSET = 1_000_000_000


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    offset: int

    @property
    def fetch(self) -> int:
        """Rows to read from the start of the list: this page and one more, to know if more follow."""
        return self.offset + self.limit + 1

    def slice(self, rows: Sequence[T]) -> tuple[list[T], int | None]:
        """This page of a whole (or ``fetch``-long) list, and the next page's offset."""
        items = list(rows[self.offset : self.offset + self.limit])
        more = len(rows) > self.offset + self.limit
        return items, (self.offset + self.limit if more else None)

    def after_offset(self, rows: Sequence[T]) -> tuple[list[T], int | None]:
        """This page of rows already read from ``offset`` on (``limit + 1`` of them at most)."""
        more = len(rows) > self.limit
        return list(rows[: self.limit]), (self.offset + self.limit if more else None)


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
) -> PageParams:
    return PageParams(limit, offset)


Paging = Annotated[PageParams, Depends(page_params)]
