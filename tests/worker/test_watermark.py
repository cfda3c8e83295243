from finops.jobs.state import GAP_EXPIRY_S, MAX_GAP_RANGES, read_new_ids, unseen


def test_missing_ids_become_gaps_until_they_fill_or_expire():
    state = read_new_ids({}, [1, 2, 5, 6, 9], now_s=100.0)
    assert state["last_ledger_id"] == 9
    assert [g[:2] for g in state["gaps"]] == [[3, 4], [7, 8]]
    is_new = unseen(state)
    assert [i for i in range(1, 12) if is_new(i)] == [3, 4, 7, 8, 10, 11]

    # id 4 commits late; 3, 7, 8 never come (rolled back, or duplicates skipped).
    state = read_new_ids(state, [4, 10], now_s=200.0)
    assert state["last_ledger_id"] == 10
    assert [g[:2] for g in state["gaps"]] == [[3, 3], [7, 8]]

    state = read_new_ids(state, [], now_s=100.0 + GAP_EXPIRY_S + 1)
    assert state == {"last_ledger_id": 10, "gaps": []}


def test_the_number_of_open_gaps_is_bounded():
    # Every other id missing: 50,000 gaps; only the newest MAX_GAP_RANGES are kept.
    state = read_new_ids({}, list(range(2, 100_001, 2)), now_s=0.0)
    assert len(state["gaps"]) == MAX_GAP_RANGES
    assert state["gaps"][-1][:2] == [99_999, 99_999]
    state = read_new_ids(state, [99_999, *range(100_001, 100_011)], now_s=1.0)
    assert state["last_ledger_id"] == 100_010
    assert len(state["gaps"]) == MAX_GAP_RANGES - 1
