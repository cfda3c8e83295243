from sqlalchemy import select

from finops.db import make_engine, unit_of_work
from finops.ledger.models import TokenLedgerRow
from finops.ledger.record import COLUMNS
from finops.ledger.store import insert_records, ledger_count
from tests.support.records import make_record


def test_rows_round_trip_exactly(db_url):
    engine = make_engine(db_url)
    record = make_record(
        streamed=True,
        ttft_ms=12.5,
        itl_ms=3.25,
        stage="generation",
        retry_of="r0",
        tokens_estimated=True,
        client_disconnected=True,
        status_code=499,
    )
    insert_records(engine, [record])
    with unit_of_work(engine) as session:
        row = session.scalars(select(TokenLedgerRow)).one()
        stored = {name: getattr(row, name) for name in COLUMNS}
    assert stored == record._asdict()
    engine.dispose()


def test_inserting_the_same_request_twice_keeps_one_row(db_url):
    engine = make_engine(db_url)
    records = [make_record() for _ in range(50)]
    insert_records(engine, records)
    insert_records(engine, [*records[:10], make_record()])
    # A batch that repeats a request id inside itself (a replayed spool beside a live batch).
    insert_records(engine, [records[0], records[0]])
    assert ledger_count(engine) == 51
    engine.dispose()


def test_a_large_batch_goes_in_whole(db_url):
    engine = make_engine(db_url)
    insert_records(engine, [make_record() for _ in range(5000)])
    assert ledger_count(engine) == 5000
    engine.dispose()
