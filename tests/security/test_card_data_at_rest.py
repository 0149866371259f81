"""Card data at rest (PCI DSS 3.3–3.5): a whole trading day against a real host on SQLite, then
every file the day left behind is searched for the demo card numbers.

The day: ``posgate serve --demo`` in a subprocess (its log captured), the product terminal core
with its journal in a state directory, the sign-on, a chip sale (the IC card with field 55), a
tap sale (contactless, entry mode 07x), a keyed sale, swiped sales, a decline, a void, a refund,
an offline sale and its advice, the settlement, then ``posgate backup``. Then every file under
the test's directory — the database and its ``-wal``/``-shm``, the backup, the terminal's
journal and its ``-wal``/``-shm``, the host's log — is read as bytes and searched for each demo
PAN:

* in ASCII (a text column, JSON, a log line, hex text of a message);
* in BCD at both nibble alignments: a PAN packed from its first digit (``62 12 14 …``) and one
  packed after a pad or length nibble (``06 21 21 4…``). Only the bytes every digit pair fully
  determines are searched, so any pad nibble (0, F) and any neighbour is covered;
* PAN + expiry as track 2 has them (``=``/``D`` separator, ASCII and BCD).

Today's code stores the reply of every financial message (fields 2 and 14 echoed, in BCD) and
the terminal journal keeps ``"pan"`` in clear: this test fails on it.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from posgate.console.backup import libpq_url, pg_tool
from posgate.fleet.hostproc import HostProcess
from posgate.store.testing import pg_available, temp_pg_database
from posgate.terminal.cards import DEMO_CARDS, read_card, read_qr
from posgate.terminal.client import Endpoint, TerminalSession, run_operation
from posgate.terminal.journal import Journal
from posgate.terminal.machine import Input, Result
from posgate.terminal.operations.base import Card

# Scan-to-pay demo payment codes (docs/decisions.md Q3): card data like PANs.
QR_PANS = ("6288000000000000011", "6288000000000000029", "6288000000000000037", "6288000000000000045",
           "134567890123456789", "281234567890123456")  # fmt: skip
CHIP = "6225880000000000010"
OK = "6212142000000000012"
POOR = "6217000000000000020"
VISA = "4761730000000011"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bcd_runs(digits: str) -> list[bytes]:
    """The bytes fully determined by ``digits`` packed in BCD, at both nibble alignments
    (starting on a byte boundary, or after one pad/length nibble)."""
    out = []
    for start in (0, 1):
        d = digits[start:]
        d = d[: len(d) - len(d) % 2]
        if len(d) >= 12:
            out.append(bytes.fromhex(d))
    return out


def patterns(pan: str, expiry: str) -> dict[str, bytes]:
    """What a full PAN (or PAN + expiry) at rest looks like, by name."""
    found: dict[str, bytes] = {"ascii": pan.encode()}
    for i, run in enumerate(_bcd_runs(pan)):
        found[f"bcd{i}"] = run
    for sep in ("=", "D", "d"):
        found[f"track2-ascii{sep}"] = f"{pan}{sep}{expiry}".encode()
    for i, run in enumerate(_bcd_runs(f"{pan}D{expiry}")):
        found[f"track2-bcd{i}"] = run
    return found


ALL_PATTERNS = {
    f"{pan}/{name}": p
    for pan, exp in [*DEMO_CARDS.items(), *((q, "3012") for q in QR_PANS)]
    for name, p in patterns(pan, exp).items()
}


def scan(root: Path) -> list[str]:
    """Every (file, pattern) hit under ``root``."""
    hits = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for name, p in ALL_PATTERNS.items():
            at = data.find(p)
            if at >= 0:
                hits.append(f"{path.relative_to(root)}: {name} at {at}")
    return hits


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scanner itself: a clear PAN in each form is found (a test that cannot fail is a defect)."""
    forms = {
        "ascii.txt": b'{"pan": "6212142000000000012"}',
        "bcd-left.bin": b"\x19" + bytes.fromhex("62258800000000000100"),  # LLVAR 19, trailing pad
        "bcd-right.bin": b"\x19" + bytes.fromhex("06225880000000000010"),  # leading pad
        "track.bin": bytes.fromhex("37") + bytes.fromhex("6212142000000000012D30122010000000000F"),
        "visa.bin": b"\x16" + bytes.fromhex("4761730000000011"),
    }
    for name, data in forms.items():
        (tmp_path / name).write_bytes(b"\x00junk" + data + b"junk")
    (tmp_path / "masked.txt").write_bytes(b'{"pan": "622588*********0010", "bcd": "\x19\x62\x25\x88"}')
    hits = scan(tmp_path)
    assert {h.split(":")[0] for h in hits} == set(forms), hits


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def day(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, HostProcess, str]]:
    """A host on SQLite (its files under the test's directory), or on a temporary PostgreSQL
    database (then a plain ``pg_dump`` of it is what gets searched)."""
    (tmp_path / "host").mkdir()
    (tmp_path / "logs").mkdir()
    key = tmp_path / "host" / "master.key"
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'host' / 'posgate.db'}"
        else:
            if not pg_available():
                pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
            url = stack.enter_context(temp_pg_database())
        host = HostProcess(url, port=_free_port(), demo=True, log_level="debug", log_path=tmp_path / "logs" / "host.log",
                           env={"POSGATE_MASTER_KEY_FILE": str(key)})  # fmt: skip
        host.start()
        try:
            yield tmp_path, host, url
        finally:
            host.stop()


def _run_day(root: Path, port: int) -> None:
    state_dir = root / "terminal-state"
    j = Journal.open(state_dir)
    s = TerminalSession.from_journal(j, Endpoint(port=port, timeout=10))
    rnd = random.Random(5)

    def card(pan: str, entry: str, amount: int, pin: str = "123456") -> Card:
        return read_card(pan, entry, pin=pin, amount=amount, when=datetime.now(UTC), randbytes=rnd.randbytes)

    def ok(inp: Input) -> Result:
        r = run_operation(s, inp)
        assert r.approved, (inp.operation, r.response_code, r.message)
        return r

    ok(Input("sign_on"))
    ok(Input("sale", amount=1200, card=card(CHIP, "insert", 1200)))  # chip: field 55
    ok(Input("sale", amount=300, card=card(CHIP, "tap", 300, pin="")))  # contactless: entry mode 07x
    ok(Input("sale", amount=800, card=card(OK, "manual", 800)))  # keyed: fields 2 and 14
    sale = ok(Input("sale", amount=1500, card=card(OK, "swipe", 1500)))  # track 2
    run_operation(s, Input("sale", amount=900, card=card(VISA, "swipe", 900)))  # declined (14): recorded too
    assert run_operation(s, Input("sale", amount=5000, card=card(POOR, "swipe", 5000))).response_code == "51"
    voided = ok(Input("sale", amount=700, card=card(OK, "swipe", 700)))
    ok(Input("void", voucher=voided.stan))
    ok(Input("refund", amount=500, card=card(OK, "swipe", 500), rrn=sale.rrn, orig_date=sale.date))
    # Scan-to-pay: the code in field 59 (hashed, masked, encrypted at rest like a PAN).
    qr = ok(Input("sale", amount=600, card=read_qr(QR_PANS[0])))
    ok(Input("void", voucher=qr.stan))
    ok(Input("sale", amount=610, card=read_qr(QR_PANS[4])))
    alipay = ok(Input("sale", amount=620, card=read_qr(QR_PANS[5])))
    ok(Input("refund", amount=100, card=read_qr(QR_PANS[5]), rrn=alipay.rrn, orig_date=alipay.date))
    assert run_operation(s, Input("sale", amount=630, card=read_qr(QR_PANS[1]))).response_code == "09"
    ok(Input("qr_query"))
    assert run_operation(s, Input("sale", amount=640, card=read_qr(QR_PANS[2]))).response_code == "51"
    assert run_operation(s, Input("sale", amount=650, card=read_qr(QR_PANS[3]))).response_code == "54"
    run_operation(s, Input("offline", amount=400, card=card(OK, "manual", 400), auth_code="123456", kind="settlement"))
    assert run_operation(s, Input("settlement")).response_code == "00"
    # The journal's readers still get the card numbers back (reprint, batch upload...).
    assert {t.pan for t, _ in j.transactions(include_settled=True)} >= {CHIP, OK, QR_PANS[0], QR_PANS[1]}
    # The terminal journal stays open: its -wal and -shm are searched as they are.


def test_a_trading_day_leaves_no_card_number_at_rest(day: tuple[Path, HostProcess, str]) -> None:
    root, host, url = day
    _run_day(root, host.port)
    backups = root / "backups"
    env = {**os.environ, "POSGATE_MASTER_KEY_FILE": str(root / "host" / "master.key")}
    proc = subprocess.run([sys.executable, "-m", "posgate.cli", "backup", "--db", url, "--dir", str(backups)],
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    archives = [p for p in backups.iterdir() if p.suffix == ".tar"]
    assert archives, list(backups.iterdir())
    problems = [f"{p.name} has mode {oct(stat.S_IMODE(p.stat().st_mode))}, not 0o600"
                for p in backups.iterdir() if stat.S_IMODE(p.stat().st_mode) != 0o600]  # fmt: skip
    # The archive is an uncompressed tar, so scanning it scans its members; they are unpacked
    # too, so that the SQLite copy's pages are searched as a file of their own.
    for archive in archives:
        with tarfile.open(archive) as tar:
            tar.extractall(backups / f"{archive.stem}-members", filter="data")
    if url.startswith("sqlite"):
        assert (root / "host" / "posgate.db-wal").exists()  # the host is still running: its WAL is searched too
    else:
        # The custom-format backup is compressed: search a plain dump, where bytea is hex text
        # (a BCD PAN in hex is its digits, which the ASCII pattern finds).
        plain = root / "host" / "plain.sql"
        dump = subprocess.run([pg_tool("pg_dump"), "--format=plain", "-f", str(plain), libpq_url(url)],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert dump.returncode == 0, dump.stderr
        assert b"COPY public.transactions" in plain.read_bytes()
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert any("terminal-state" in f for f in files) and any("backups" in f for f in files), files
    problems += scan(root)
    assert not problems, "card data at rest:\n" + "\n".join(problems)
