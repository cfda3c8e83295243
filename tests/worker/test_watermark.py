from finops.jobs.state import GAP_EXPIRY_S, read_new_ids


def test_missing_ids_become_gaps_until_they_fill_or_expire():
    state = read_new_ids({}, [1, 2, 5, 6, 9], now_s=100.0)
    assert state["last_ledger_id"] == 9
    assert [g[:2] for g in state["gaps"]] == [[3, 4], [7, 8]]

    # id 4 commits late; 3, 7, 8 never come (rolled back, or duplicates skipped).
    state = read_new_ids(state, [4, 10], now_s=200.0)
    assert state["last_ledger_id"] == 10
    assert [g[:2] for g in state["gaps"]] == [[3, 3], [7, 8]]

    state = read_new_ids(state, [], now_s=100.0 + GAP_EXPIRY_S + 1)
    assert state == {"last_ledger_id": 10, "gaps": []}
