import time

from finops.db import make_engine
from finops.ledger.spool import Spool
from finops.ledger.store import insert_records, ledger_count
from finops.ledger.writer import LedgerWriter
from tests.support.private_postgres import PrivatePostgres
from tests.support.records import make_record


def wait_for(predicate, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_writer_batches_into_the_database(db_url, tmp_path):
    engine = make_engine(db_url)
    observed = []
    writer = LedgerWriter(
        lambda batch: insert_records(engine, batch),
        Spool(tmp_path / "spool"),
        batch_size=100,
        flush_interval_s=0.02,
        observer=observed.extend,
    )
    writer.start()
    records = [make_record() for _ in range(1234)]
    for record in records:
        writer.submit(record)
    writer.submit(lambda: make_record(request_id="deferred"))
    writer.close()
    assert ledger_count(engine) == 1235
    assert len(observed) == 1235
    assert writer.stats.spooled_records == 0
    engine.dispose()


def test_nothing_is_lost_while_postgres_is_away():
    from finops.migrate import upgrade

    server = PrivatePostgres()
    try:
        server.start()
        upgrade(server.url)
        engine = make_engine(server.url, connect_args={"connect_timeout": 2})
        spool = Spool(server.root / "spool")
        writer = LedgerWriter(
            lambda batch: insert_records(engine, batch),
            spool,
            batch_size=50,
            flush_interval_s=0.02,
            replay_interval_s=0.2,
        )
        writer.start()
        for _ in range(100):
            writer.submit(make_record())
        assert wait_for(lambda: writer.queued == 0 and writer.stats.inserted_records == 100)

        server.stop()
        for _ in range(300):
            writer.submit(make_record())
        assert wait_for(lambda: writer.stats.spooled_records == 300)
        assert writer.database_down
        assert spool.pending_records() == 300

        server.start()
        assert wait_for(lambda: not writer.database_down and not spool.pending())
        writer.submit(make_record())
        writer.close()
        assert ledger_count(engine) == 401
        assert writer.stats.replayed_records == 300
        engine.dispose()
    finally:
        server.destroy()


def test_a_record_the_database_refuses_is_set_aside_and_the_rest_go_in(pg_url, tmp_path):
    engine = make_engine(pg_url)
    spool = Spool(tmp_path / "spool")
    writer = LedgerWriter(
        lambda batch: insert_records(engine, batch), spool, batch_size=100, flush_interval_s=0.02
    )
    writer.start()
    bad = make_record(stage="s" * 100)  # wider than the column: Postgres refuses the row for its data
    good = [make_record() for _ in range(49)]
    for record in [*good[:20], bad, *good[20:]]:
        writer.submit(record)
    writer.close()
    assert ledger_count(engine) == 49
    assert writer.stats.dead_lettered_records == 1
    assert not writer.database_down and spool.pending() == []
    assert bad.request_id in (tmp_path / "spool" / "dead-letter.ndjson").read_text()
    engine.dispose()
