"""How long a day's clearing takes: write, parse, match and import a file of N records against
N acquirer transactions (one in a thousand differs), on a temporary SQLite database.

    PYTHONPATH=src python tests/clearing/bench_import.py [N]

Prints figures; asserts nothing about speed (not collected by pytest).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from posgate.clearing.file import ClearingRecord, format_clearing_file, parse_clearing_file
from posgate.clearing.match import match
from posgate.clearing.service import acquirer_candidates, import_file
from posgate.store import schema as s
from posgate.store.database import Database

DATE, DAY = "20250601", "2025-06-01"


def main(n: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    os.environ["POSGATE_MASTER_KEY_FILE"] = str(tmp / "master.key")
    db = Database.open(f"sqlite:///{tmp / 'bench.db'}")
    now = datetime.now(UTC)
    rows = []
    records = []
    for i in range(n):
        tid, stan, rrn = f"{10000000 + i % 500:08d}", f"{i % 999_999 + 1:06d}", f"{i:012d}"
        amount = 100 + i % 10_000
        rows.append(dict(created_at=now, day=DAY, terminal_id=tid, merchant_id="898100012340001", batch_no="000001", stan=stan,
                         mti="0200", operation="sale", processing_code="000000", amount=amount, response_code="00", rrn=rrn,
                         status="approved", request_digest=f"b{i}", source="terminal"))  # fmt: skip
        records.append(ClearingRecord(business_date=DATE, acquirer_id="00049990", stan=stan, transmission_time="0601120000",
                                      pan_masked="621214*********0012", amount=amount + (1 if i % 1000 == 0 else 0),
                                      mti="0200", processing_code="000000", terminal_id=tid, merchant_id="898100012340001",
                                      rrn=rrn, response_code="00"))  # fmt: skip
    with db.engine.begin() as conn:
        for k in range(0, n, 5000):
            conn.execute(insert(s.transactions), rows[k : k + 5000])
    t0 = time.perf_counter()
    data = format_clearing_file(records, business_date=DATE, sender="CUPNETWORK", created="20250602010000")
    t1 = time.perf_counter()
    parsed = parse_clearing_file(data)
    t2 = time.perf_counter()
    with db.engine.connect() as conn:
        ours = acquirer_candidates(conn, DATE)
    t3 = time.perf_counter()
    outcomes = match(parsed.records, ours)
    t4 = time.perf_counter()
    with db.engine.begin() as conn:
        result = import_file(conn, data, file_name="bench", actor="bench")
    t5 = time.perf_counter()
    db.close()
    print(f"{n} records, file {len(data) / 1e6:.1f} MB, {result.differences} differences ({len(outcomes)} outcomes)")
    for what, secs in (("write", t1 - t0), ("parse", t2 - t1), ("read ours", t3 - t2), ("match", t4 - t3),
                       ("import (parse+read+match+store)", t5 - t4)):  # fmt: skip
        print(f"  {what:<32} {secs:7.2f} s  {n / secs:>10,.0f} records/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
