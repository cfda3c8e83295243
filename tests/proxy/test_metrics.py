from finops.proxy import metrics as metrics_module
from finops.proxy.metrics import ProxyMetrics
from tests.support.records import make_record


def test_client_chosen_labels_are_capped(monkeypatch):
    monkeypatch.setattr(metrics_module, "MAX_LABEL_SETS", 3)
    metrics = ProxyMetrics()
    metrics.observe([make_record(team=f"team{i}", feature="f") for i in range(10)])
    samples = [
        s
        for family in metrics.registry.collect()
        if family.name == "finops_requests"
        for s in family.samples
        if s.name == "finops_requests_total"
    ]
    teams = sorted(s.labels["team"] for s in samples)
    assert teams == ["other", "team0", "team1", "team2"]
    assert sum(s.value for s in samples) == 10
