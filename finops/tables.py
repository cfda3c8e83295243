"""Plain-text tables for the terminal commands (keys, report, traces)."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def render_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Collection[int] = (),
    rule_before_last: bool = False,
) -> str:
    """Columns padded to their widest cell; the columns in ``right`` (numbers) are right-aligned.

    ``rule_before_last`` puts a rule under the header and above the last row (a total line).
    """
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = (
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        return "  ".join(cells).rstrip()

    lines = [line(header)]
    if rule_before_last and rows:
        rule = "-" * len(line(header))
        return "\n".join([*lines, rule, *(line(r) for r in rows[:-1]), rule, line(rows[-1])])
    return "\n".join([*lines, *(line(r) for r in rows)])
