"""Budgets through the service and the CLI: validation with errors that name the field, and the sync
of finops.yaml's budgets (config wins)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from finops.budgets.service import (
    BudgetError,
    create_budget,
    delete_budget,
    list_budgets,
    sync_config_budgets,
    update_budget,
)
from finops.cli import main
from finops.db import make_engine, unit_of_work
from tests.budgets.support import config_with

SEARCH = {"name": "search-team", "scope": {"team": "search"}, "monthly_usd": "5000", "channels": ["ops"]}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({**SEARCH, "monthly_usd": "-5"}, "monthly_usd"),
        ({**SEARCH, "monthly_usd": "0"}, "monthly_usd"),
        ({**SEARCH, "channels": ["nowhere"]}, "channels: unknown channel nowhere"),
        ({**SEARCH, "thresholds": ["0"]}, "thresholds"),
        ({**SEARCH, "thresholds": ["10.5"]}, "thresholds"),
        ({**SEARCH, "basis": "bananas"}, "basis"),
        ({**SEARCH, "monthly_usd": "0.0000000001"}, "monthly_usd"),
        ({**SEARCH, "colour": "red"}, "colour"),
    ],
)
def test_bad_budgets_are_refused_naming_the_field(db_url, spec, field):
    engine = make_engine(db_url)
    config = config_with(db_url, [])
    with pytest.raises(BudgetError, match=field), unit_of_work(engine) as session:
        create_budget(session, config, spec)
    with unit_of_work(engine) as session:
        assert list_budgets(session) == []
    engine.dispose()


def test_create_update_delete_and_config_wins(db_url):
    engine = make_engine(db_url)
    config = config_with(db_url, [{**SEARCH, "name": "from-yaml", "monthly_usd": "100"}])
    with unit_of_work(engine) as session:
        assert sync_config_budgets(session, config) == 1
        assert sync_config_budgets(session, config) == 0  # nothing changed
        row = create_budget(session, config, SEARCH)
        assert (row.monthly_nusd, row.thresholds, row.source) == (5000 * 10**9, "0.5,0.8,1.0", "api")
        with pytest.raises(BudgetError, match="exists already"):
            create_budget(session, config, SEARCH)
        row = update_budget(
            session, config, "search-team", {"monthly_usd": Decimal("7500.5"), "thresholds": [0.9]}
        )
        assert (row.monthly_nusd, row.thresholds) == (7_500_500_000_000, "0.9")
        with pytest.raises(BudgetError, match="monthly_usd"):
            update_budget(session, config, "search-team", {"monthly_usd": -1})
        with pytest.raises(BudgetError, match=r"finops\.yaml"):
            update_budget(session, config, "from-yaml", {"monthly_usd": 1})
        with pytest.raises(BudgetError, match=r"finops\.yaml"):
            delete_budget(session, "from-yaml")
        with pytest.raises(BudgetError, match="no budget named"):
            delete_budget(session, "nope")
    # The file changes: its budget follows, and it takes over an API budget of the same name.
    changed = config_with(db_url, [{**SEARCH, "monthly_usd": "42"}])
    with unit_of_work(engine) as session:
        sync_config_budgets(session, changed)
        rows = {r.name: r for r in list_budgets(session)}
    assert set(rows) == {"search-team"}
    assert (rows["search-team"].monthly_nusd, rows["search-team"].source) == (42 * 10**9, "config")
    with unit_of_work(engine) as session:
        delete_budget_error = None
        try:
            delete_budget(session, "search-team")
        except BudgetError as exc:
            delete_budget_error = str(exc)
    assert delete_budget_error is not None and "finops.yaml" in delete_budget_error
    engine.dispose()


def test_budgets_cli(db_url, tmp_path, capsys):
    path = tmp_path / "finops.yaml"
    path.write_text(yaml.safe_dump({"database_url": db_url, "channels": {"ops": {"type": "console"}}}))
    c = ["--config", str(path)]
    assert (
        main(["budgets", "create", "ads", "--team", "ads", "--monthly-usd", "250", "--channels", "ops", *c])
        == 0
    )
    assert main(["budgets", "create", "bad", "--monthly-usd", "-3", *c]) == 2
    assert "monthly_usd" in capsys.readouterr().err
    assert main(["budgets", "create", "bad", "--monthly-usd", "3", "--channels", "slack-x", *c]) == 2
    assert "unknown channel slack-x" in capsys.readouterr().err
    assert main(["budgets", "create", "bad", "--monthly-usd", "3", "--thresholds", "0.5,11", *c]) == 2
    assert "thresholds" in capsys.readouterr().err
    assert main(["budgets", "update", "ads", "--monthly-usd", "300", "--thresholds", "50%,90%", *c]) == 0
    capsys.readouterr()
    assert main(["budgets", "list", *c]) == 0
    out = capsys.readouterr().out
    assert "ads" in out and "$300.00" in out and "team=ads" in out and "0.5,0.9" in out
    assert main(["budgets", "delete", "ads", *c]) == 0
    capsys.readouterr()
    assert main(["budgets", "list", *c]) == 0
    assert "no budgets" in capsys.readouterr().out
