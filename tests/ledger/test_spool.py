import os

import pytest

from finops.ledger.spool import Spool
from tests.support.records import make_record


def test_batches_survive_on_disk_and_replay_in_order(tmp_path):
    spool = Spool(tmp_path / "spool")
    first = [make_record() for _ in range(3)]
    second = [make_record() for _ in range(2)]
    spool.write(first)
    spool.write(second)
    assert spool.pending_records() == 5
    seen = []
    assert Spool(tmp_path / "spool").replay(seen.append) == 5
    assert seen == [first, second]
    assert spool.pending() == []


def test_a_failed_replay_keeps_the_batch(tmp_path):
    spool = Spool(tmp_path)
    records = [make_record()]
    spool.write(records)

    def down(_batch):
        raise ConnectionError("database away")

    with pytest.raises(ConnectionError):
        spool.replay(down)
    assert spool.pending_records() == 1
    got = []
    spool.replay(got.append)
    assert got == [records]


def test_claims_of_a_dead_process_are_returned(tmp_path):
    spool = Spool(tmp_path)
    path = spool.write([make_record()])
    os.replace(path, path.with_name(path.name + ".replaying.999999999"))
    assert spool.pending() == []
    spool.recover_claims()
    assert len(spool.pending()) == 1
