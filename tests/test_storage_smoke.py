from decimal import Decimal
from datetime import date

import sqlalchemy as sa

from portfolio import records, storage


def test_postgres_upsert_roundtrip(postgres_url):
    engine = storage.make_engine(postgres_url)
    rows = [records.CostRecord(source="s", app_id="a", day=date(2024, 1, 1), category="infra", service="x", amount=Decimal("1.25"))]
    with engine.begin() as conn:
        assert storage.upsert(conn, records.CostRecord, rows) == 1
    with engine.begin() as conn:
        assert storage.upsert(conn, records.CostRecord, rows) == 0
    frame = storage.read_frame(engine, records.CostRecord)
    assert frame.amount.tolist() == [Decimal("1.250000")]
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from costrecord")).scalar() == 1
