"""The tag pattern the API documents agrees with the rule the proxy enforces (one rule, two spellings)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from finops.api.params import TAG_PATTERN
from finops.proxy.errors import ProxyError
from finops.proxy.tags import check_tag_value

ALPHABET = st.sampled_from(list("aZ09 _.:/@+=,()[]#-\"'\\\x00é\t"))


def accepted(value: str) -> bool:
    try:
        return check_tag_value("team", value) == value
    except ProxyError:
        return False


@given(st.text(ALPHABET, min_size=0, max_size=130))
def test_documented_pattern_matches_the_enforced_rule(value: str):
    documented = re.fullmatch(TAG_PATTERN, value) is not None
    if value == value.strip():
        assert documented == accepted(value)
    elif documented:
        # Trailing spaces: the proxy strips them and accepts the rest.
        assert accepted(value.strip()) or not value.strip()
