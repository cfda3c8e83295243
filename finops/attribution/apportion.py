"""Largest-remainder rounding over a common denominator, with a check for inexact inputs.

Rows are given as integer numerators over one shared denominator, summing to ``total x denominator``.
Each row first gets the floor of its quota; the units still missing (fewer than the number of rows)
go one each to the rows with the largest remainders. Equal remainders go in row order, so a caller
fixes its tie rule by the order of the rows. Integers throughout: the shares always sum to ``total``.

The sweep feeds numerators that are exact only to within a known bound; ``margin`` carries that bound
so the rounding can say whether the exact inputs could have rounded differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import floordiv, mod


def largest_remainder(
    total: int,
    numerators: Sequence[int],
    denominator: int,
    *,
    margin: int = 0,
    uncertain_rows: int = 0,
) -> list[int] | None:
    """Split ``total`` units among the rows in proportion to ``numerators``.

    ``margin``: the first ``uncertain_rows`` numerators stand for exact ones that differ by less than
    ``margin`` (in numerator units); the other rows are exact. Returns None when that uncertainty
    could change a floor or which rows get the remaining units, so the caller must retry with exact
    numerators; with ``margin`` 0 it always returns the shares.
    """
    # Two C-level maps beat one divmod per row plus unpacking, at the sizes a window has.
    shares = list(map(floordiv, numerators, repeat(denominator)))
    remainders = list(map(mod, numerators, repeat(denominator)))
    missing = total - sum(shares)
    if not 0 <= missing < max(len(shares), 1):
        raise ValueError("numerators must sum to total x denominator")
    if margin and uncertain_rows:
        uncertain = remainders[:uncertain_rows]
        # A remainder this close to 0 or to the denominator could belong to the neighbouring integer.
        if min(uncertain) < margin or max(uncertain) > denominator - margin:
            return None
    if missing:
        order = sorted(range(len(remainders)), key=remainders.__getitem__, reverse=True)
        # The last row served and the first row not served must be told apart despite both errors.
        if margin and remainders[order[missing - 1]] - remainders[order[missing]] <= 2 * margin:
            return None
        for row in order[:missing]:
            shares[row] += 1
    return shares
