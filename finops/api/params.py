"""Constraints shared by text inputs: control characters (NUL above all, which Postgres refuses in text)
are turned away as a validation error naming the field, never passed on to become a 500."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

PRINTABLE = r"^[^\x00-\x1f\x7f]+$"

TagQuery = Annotated[str | None, Query(min_length=1, max_length=256, pattern=PRINTABLE)]

# The proxy's tag rule (finops.proxy.tags.check_tag_value, which still enforces it) written as a JSON
# Schema pattern, so that clients see it in the document: 1 to 128 characters from a safe set, not
# starting with a space or with = + - @ (values end up in finance's spreadsheets).
TAG_PATTERN = r"^[A-Za-z0-9_.:/,()\[\]#][A-Za-z0-9 _.:/@+=,()\[\]#-]{0,127}$"
