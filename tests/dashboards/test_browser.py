"""The dashboards in a real headless Chromium, on data from a loadgen run: sign in, open every page as a
person would, check that the numbers and charts shown are the database's, change filters and see the
figures change, and keep a screenshot of each page (artifacts/screenshots/, and the Overview also in
docs/screenshots/overview.png for the README)."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from dashboards import format as fmt
from dashboards.periods import resolve
from finops.alerts.queries import list_alerts
from finops.budgets.queries import budget_statuses
from finops.config import load_config
from finops.db import make_engine, unit_of_work
from finops.rollups.queries import spend_by, total_spend
from finops.traces.models import TraceCostRow
from tests.dashboards.support import DOCS_SCREENSHOTS, SCREENSHOTS, USERS, browser, chromium_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium and chromium-driver"),
]
WAIT_S = 30.0


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # the element is being re-rendered by a callback
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Page:
    """The browser seen as a person uses it: click, read text, read a chart's data."""

    def __init__(self, driver: Any, base: str) -> None:
        self.d = driver
        self.base = base

    def by_id(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.d.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        return wait_for(lambda: self.by_id(element_id).text.strip(), f"text of #{element_id}")

    def login(self, name: str) -> None:
        self.d.get(self.base + "/")
        wait_for(lambda: self.by_id("username"), "the login form")
        self.by_id("username").send_keys(name)
        self.by_id("password").send_keys(USERS[name][2])
        self.by_id("login").click()
        wait_for(lambda: self.by_id("user-name").text == name, "the signed-in shell")

    def open(self, nav_id: str, ready_id: str) -> None:
        """Click the sidebar link and wait for the page's content."""
        self.by_id(nav_id).click()
        wait_for(lambda: self.by_id(ready_id), f"#{ready_id}")
        self.settle()

    def settle(self) -> None:
        # Dash marks a pending callback on <body>/elements with data-dash-is-loading.
        wait_for(
            lambda: (
                not self.d.execute_script("return document.querySelector('[data-dash-is-loading=\"true\"]')")
            ),
            "callbacks to finish",
        )
        time.sleep(0.3)

    def figure(self, graph_id: str) -> list[dict[str, Any]]:
        script = (
            f"const el = document.querySelector('#{graph_id} .js-plotly-plot');"
            "return el && el.data ? el.data.map(t => ({name: t.name, x: Array.from(t.x || []),"
            " y: Array.from(t.y || [])})) : null;"
        )
        return wait_for(lambda: self.d.execute_script(script), f"chart #{graph_id}")

    def table(self, table_id: str) -> list[list[str]]:
        from selenium.webdriver.common.by import By

        rows = self.by_id(table_id).find_elements(By.CSS_SELECTOR, "tbody tr")
        return [[cell.text.strip() for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]

    def choose(self, dropdown_id: str, label: str) -> None:
        from selenium.webdriver.common.by import By

        self.by_id(dropdown_id).click()
        option = wait_for(
            lambda: next(
                o
                for o in self.d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")
                if o.text.strip() == label
            ),
            f"option {label!r} of #{dropdown_id}",
        )
        option.click()
        self.settle()

    def radio(self, radio_id: str, label: str) -> None:
        from selenium.webdriver.common.by import By

        for option in self.by_id(radio_id).find_elements(By.TAG_NAME, "label"):
            if option.text.strip() == label:
                option.click()
                self.settle()
                return
        raise AssertionError(f"no {label!r} in #{radio_id}")

    def screenshot(self, name: str) -> None:
        """The whole page, not just the window: the viewport is stretched to the content's height."""
        height = self.d.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
        )
        metrics = {"width": 1440, "height": min(int(height), 6000), "deviceScaleFactor": 1, "mobile": False}
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        time.sleep(0.8)  # plotly redraws the charts at the new size
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def stacked_total(traces: list[dict[str, Any]]) -> float:
    return sum(sum(y for y in t["y"] if y is not None) for t in traces)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.fixture(scope="module")
def db(loadgen_stack) -> Iterator[Any]:
    engine = make_engine(loadgen_stack.db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def page(loadgen_stack, tmp_path) -> Iterator[Page]:
    with browser(tmp_path) as driver:
        yield Page(driver, loadgen_stack.base_url)


def test_every_page_shows_the_database_numbers_and_follows_the_filters(page, loadgen_stack, db):
    config = load_config(loadgen_stack.config_path)
    now = datetime.now(UTC)
    week = resolve("7d", now)
    with unit_of_work(db) as session:
        total = total_spend(session, week.start, week.end)
        # Idle time has no token cost: the token-basis chart leaves it out.
        by_team = {
            line.group: line
            for line in spend_by(session, week.start, week.end, "team")
            if line.group != "(idle)"
        }
        support = total_spend(session, week.start, week.end, team="support")
        by_feature = {
            line.group: line
            for line in spend_by(session, week.start, week.end, "feature")
            if line.group != "(idle)"
        }
        backends = spend_by(session, week.start, week.end, "backend")
        statuses = budget_statuses(session, config, now)
        alerts = list_alerts(session, limit=50)
        traces = session.scalar(select(func.count()).select_from(TraceCostRow))
    assert total.calls > 0 and traces and statuses and alerts

    page.login("admin")

    # -- Overview -------------------------------------------------------------------------------------
    page.open("nav-overview", "ov-token-spend")
    assert page.text("ov-token-spend") == fmt.usd(total.token_cost_nusd)
    assert page.text("ov-gpu-spend") == fmt.usd(total.gpu_cost_nusd + total.idle_cost_nusd)
    assert page.text("ov-calls") == fmt.count(total.calls)
    budgets = page.table("ov-budgets")
    assert sorted(row[0] for row in budgets) == sorted(s.name for s in statuses)
    for row in budgets:
        status = next(s for s in statuses if s.name == row[0])
        assert row[4] == fmt.usd(status.spend_nusd) and row[5] == fmt.usd(status.amount_nusd)
    trend = page.figure("ov-trend")
    assert close(stacked_total(trend), fmt.usd_float(total.token_cost_nusd))
    burndown = page.figure("ov-burndown-chart")
    assert [t["name"] for t in burndown] == ["left", "forecast"]
    wait_for(
        lambda: len(page.d.find_elements("css selector", ".alert-list li")) == min(6, len(alerts)),
        "recent alerts",
    )
    page.screenshot("overview")
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCREENSHOTS / "overview.png", DOCS_SCREENSHOTS / "overview.png")

    # -- Spend: the chart and table are the rollups; the filters change them -----------------------------
    page.open("nav-spend", "spend-total")
    assert page.text("spend-total") == fmt.usd(total.token_cost_nusd)
    figure = page.figure("spend-cost")
    assert {t["name"] for t in figure} == set(by_team)
    for t in figure:
        assert close(sum(t["y"]), fmt.usd_float(by_team[t["name"]].token_cost_nusd)), t["name"]
    table = {row[0]: row for row in page.table("spend-table")}
    for team, line in by_team.items():
        assert table[team][1] == fmt.count(line.calls)
        assert table[team][5] == fmt.usd(line.token_cost_nusd)
    page.screenshot("spend")

    page.radio("spend-by", "Feature")
    wait_for(
        lambda: {t["name"] for t in page.figure("spend-cost")} == set(by_feature), "the chart by feature"
    )
    page.choose("f-team", "support")
    wait_for(lambda: page.text("spend-total") == fmt.usd(support.token_cost_nusd), "support's total")
    shown = {t["name"] for t in page.figure("spend-cost")}
    assert shown == {"chatbot", "triage"}, shown
    page.radio("spend-basis", "GPU time")
    wait_for(lambda: page.text("spend-total") == fmt.usd(support.gpu_cost_nusd), "support's GPU cost")
    page.screenshot("spend-filtered")
    # A period with no calls: the page says what to do instead of drawing empty axes.
    page.choose("f-period", "Last month")
    assert "No calls yet" in page.text("spend-empty")
    assert "X-FinOps-Team" in page.text("spend-empty")

    # -- Amplification, then a trace from its table ---------------------------------------------------
    page.d.get(page.base + "/amplification")  # a fresh load resets the filters to their defaults
    wait_for(lambda: page.by_id("amp-traces"), "the amplification page")
    page.settle()
    assert page.text("amp-traces") == fmt.count(traces)
    distribution = page.figure("amp-distribution")
    assert sum(stacked_total([t]) for t in distribution) == traces
    breakdown = page.figure("amp-breakdown")
    assert len(breakdown) == 7  # baseline + six parts
    top = page.table("amp-top")
    assert top, "no costliest traces"
    page.screenshot("amplification")
    first_trace = top[0][0]
    from selenium.webdriver.common.by import By

    page.by_id("amp-top").find_element(By.LINK_TEXT, first_trace).click()
    wait_for(lambda: page.text("trace-title") == first_trace, "the trace explorer on that trace")
    page.settle()
    with unit_of_work(db) as session:
        row = session.get(TraceCostRow, first_trace)
        assert row is not None
        calls, cost = row.calls, row.total_cost_nusd
    assert page.text("trace-calls") == fmt.count(calls)
    assert page.text("trace-cost") == fmt.usd(cost)
    bars = page.figure("trace-waterfall")
    assert sum(len(t["y"]) for t in bars) == calls
    page.screenshot("trace")

    # -- GPUs ---------------------------------------------------------------------------------------
    page.open("nav-gpus", "gpus-table")
    rows = {r[0]: r for r in page.table("gpus-table")}
    assert set(rows) == {b.group for b in backends}
    for b in backends:
        assert rows[b.group][4] == fmt.usd(b.gpu_cost_nusd)
        assert rows[b.group][5] == fmt.usd(b.idle_cost_nusd)
    assert page.text("gpus-idle-cost") == fmt.usd(sum(b.idle_cost_nusd for b in backends))
    page.screenshot("gpus")

    # -- Latency --------------------------------------------------------------------------------------
    page.open("nav-latency", "lat-ttft")
    names = {t["name"] for t in page.figure("lat-ttft")}
    assert {"llama-8b p50", "llama-8b p99", "qwen-1b p90"} <= names
    page.screenshot("latency")

    # -- Alerts ---------------------------------------------------------------------------------------
    page.open("nav-alerts", "alerts-table")
    shown_alerts = page.table("alerts-table")
    assert len(shown_alerts) == len(alerts)
    for row, alert in zip(shown_alerts, alerts, strict=True):
        assert alert.subject in row[2]
        for delivery in alert.deliveries:
            assert delivery.status in row[6] and delivery.channel in row[6]
    page.screenshot("alerts")


def test_a_team_member_sees_only_its_team_in_the_browser(page, loadgen_stack, db):
    now = datetime.now(UTC)
    week = resolve("7d", now)
    with unit_of_work(db) as session:
        search = total_spend(session, week.start, week.end, team="search")
    page.login("ana")
    page.open("nav-overview", "ov-token-spend")
    assert page.text("ov-token-spend") == fmt.usd(search.token_cost_nusd)
    assert [row[0] for row in page.table("ov-budgets")] == ["search-monthly"]
    assert page.by_id("f-team").text.strip() == "search"
    assert page.by_id("f-team").get_attribute("disabled") is not None
    page.open("nav-spend", "spend-total")
    assert {t["name"] for t in page.figure("spend-cost")} == {"search"}
    page.open("nav-alerts", "alerts-body")
    body = page.by_id("alerts-body").text
    assert "support" not in body and "search-monthly" in body
    page.screenshot("team-member-alerts")
