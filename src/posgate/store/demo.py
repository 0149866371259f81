"""The embedded demo's data, exactly as ``docs/demo-data.md`` fixes it.

``provision_demo(engine, keyring)`` is idempotent: what exists already is left alone (a second
run changes nothing, balances moved by transactions stay as they are). Console users are the
console's: ``posgate.console.demo.provision_users(conn)`` is called when that module exists.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select, update

from posgate.dialect.ic_params import DEMO_AIDS, UNIONPAY_TEST_CAPKS
from posgate.domain.chip import DEMO_CHIP_CARDS
from posgate.store import admin, ic_params, payouts
from posgate.store import schema as s
from posgate.store.keyring import Keyring
from posgate.store.payouts_schema import bank_accounts

ACTOR = "demo"

SETTINGS = {
    "institution_id": "00049990",  # field 32
    "timezone": "Asia/Shanghai",
    "currency": "156",
    "tpdu": "6000030000",  # what a terminal sends
    "header": "603100000000",
    "demo": "1",
}

MERCHANTS = (
    # merchant_id, name (zh), name_en, mcc, fee_rate_bp
    ("898100012340001", "演示便利店", "Demo Mart", "5411", 60),
    ("898100012340002", "演示餐厅", "Demo Bistro", "5812", 38),
)

BANK_ACCOUNTS = (
    # merchant_id, bank, bank code (CNAPS), account name, account number (sealed; docs/demo-data.md)
    ("898100012340001", "中国工商银行上海市分行营业部", "102290000018", "上海演示便利店有限公司", "1001244309300012345"),
    ("898100012340002", "中国建设银行上海市分行营业部", "105290036005", "上海演示餐厅有限公司", "31050161373600005678"),
)

TERMINALS = (
    # terminal_id, merchant_id, TMK, device serial
    ("10000001", "898100012340001", "159D86C7C1F779EA29F77A6858E0DA2A", "DEMO0001"),
    ("10000002", "898100012340001", "31313131313131313232323232323232", "DEMO0002"),
    ("20000001", "898100012340002", "0123456789ABCDEFFEDCBA9876543210", "DEMO0003"),
)

SM4_TERMINALS = (
    # terminal_id, merchant_id, SM4 TMK, device serial: the national-cryptography (国密) terminal
    ("40000001", "898100012340002", "0123456789ABCDEFFEDCBA9876543210", "DEMO0004"),
)

PIN = "123456"


@dataclass(frozen=True)
class DemoCard:
    pan: str
    expiry: str
    kind: str
    organisation: str
    chip: bool
    state: str
    balance: int  # fen
    per_txn_limit: int | None = None


CARDS = (
    DemoCard("6212142000000000012", "3012", "debit", "CUP", False, "active", 10_000_000),
    DemoCard("6217000000000000020", "3012", "debit", "CUP", False, "active", 1_000),
    DemoCard("6217000000000000038", "2001", "debit", "CUP", False, "active", 500_000),  # expired by its date: 54
    DemoCard("6217000000000000046", "3012", "debit", "CUP", False, "lost", 500_000),
    DemoCard("6217000000000000053", "3012", "debit", "CUP", False, "stolen", 500_000),
    DemoCard("6217000000000000061", "3012", "debit", "CUP", False, "restricted", 500_000),
    DemoCard("6217000000000000079", "3012", "debit", "CUP", False, "active", 10_000_000, per_txn_limit=50_000),
    DemoCard("6225880000000000010", "3012", "credit", "CUP", True, "active", 5_000_000),
    DemoCard("4761730000000011", "3012", "debit", "VIS", False, "active", 10_000_000),
)

# Scan-to-pay demo payment codes (docs/decisions.md Q3), fixed values outside kits rely on.
# Kept in the issuer's cards table like a PAN (hashed, encrypted; no clear code at rest).
QR_CODES = (
    DemoCard("6288000000000000011", "3012", "debit", "CUP", False, "active", 10_000_000),  # UnionPay QR: approved
    DemoCard("6288000000000000029", "3012", "debit", "CUP", False, "password", 10_000_000),  # 09, then the query: 00
    DemoCard("6288000000000000037", "3012", "debit", "CUP", False, "active", 0),  # 51
    DemoCard("6288000000000000045", "2001", "debit", "CUP", False, "active", 10_000_000),  # code expired: 54
    DemoCard("134567890123456789", "3012", "debit", "CUP", False, "active", 10_000_000),  # WeChat Pay style
    DemoCard("281234567890123456", "3012", "debit", "CUP", False, "active", 10_000_000),  # Alipay style
)


def provision_demo(engine: Engine, keyring: Keyring) -> int:
    """Create whatever of the demo data is missing; returns the number of objects created."""
    with engine.begin() as conn:
        created = _provision(conn, keyring)
        created += _console_users(conn)
    return created


def _provision(conn: Connection, keyring: Keyring) -> int:
    created = 0
    for key, value in SETTINGS.items():
        created += admin.set_setting(conn, key, value, actor=ACTOR, only_if_missing=True)
    have = set(conn.execute(select(s.merchants.c.merchant_id)).scalars())
    for mid, name, name_en, mcc, fee in MERCHANTS:
        if mid not in have:
            admin.add_merchant(conn, mid, name, mcc, fee, name_en=name_en, actor=ACTOR)
            created += 1
    have = set(conn.execute(select(bank_accounts.c.merchant_id)).scalars())
    for mid, bank, code, name, number in BANK_ACCOUNTS:
        if mid not in have:
            payouts.provision_account(conn, keyring, mid, account_number=number, bank_name=bank, account_name=name,
                                      bank_code=code, actor=ACTOR)  # fmt: skip
            created += 1
    have = set(conn.execute(select(s.terminals.c.terminal_id)).scalars())
    for algorithm, terminals in (("des", TERMINALS), ("sm4", SM4_TERMINALS)):
        for tid, mid, tmk, serial in terminals:
            if tid not in have:
                admin.add_terminal(conn, keyring, tid, mid, tmk=bytes.fromhex(tmk), serial=serial, actor=ACTOR,
                                   algorithm=algorithm, ic_download=False)  # fmt: skip
                created += 1
    have = set(conn.execute(select(s.cards.c.pan_hash)).scalars())
    for c in CARDS:
        chip_keys = DEMO_CHIP_CARDS.get(c.pan)
        keys = chip_keys.keys if chip_keys else None
        if keyring.pan_hash(c.pan) not in have:
            admin.add_card(conn, keyring, c.pan, c.expiry, PIN, balance=c.balance, kind=c.kind, organisation=c.organisation,
                           chip=c.chip, state=c.state, per_txn_limit=c.per_txn_limit, actor=ACTOR,
                           icc_keys=keys)  # fmt: skip
            created += 1
        elif keys is not None:  # a demo chip card provisioned before chip keys existed (0007) gets its keys
            conn.execute(update(s.cards).where(s.cards.c.pan_hash == keyring.pan_hash(c.pan),
                                               s.cards.c.icc_keys_enc.is_(None))
                         .values(icc_keys_enc=keyring.encrypt_key(keys, b"icc")))  # fmt: skip
    for c in QR_CODES:
        if keyring.pan_hash(c.pan) not in have:
            admin.add_card(conn, keyring, c.pan, c.expiry, PIN, balance=c.balance, kind=c.kind, organisation=c.organisation,
                           state=c.state, actor=ACTOR, payment_code=True)  # fmt: skip
            created += 1
    created += _ic_params(conn)
    return created


def _ic_params(conn: Connection) -> int:
    """The UnionPay AIDs (no-CVM limit ¥1,000.00) and test CA public keys of docs/demo-data.md.
    Terminals fetch them at their first sign-on: no terminal is flagged."""
    created = 0
    have_aids = set(conn.execute(select(s.ic_aids.c.aid)).scalars())
    for aid in DEMO_AIDS:
        if aid.aid not in have_aids:
            ic_params.put_aid(conn, aid, actor=ACTOR, flag=False)
            created += 1
    have_capks = {(r[0], r[1]) for r in conn.execute(select(s.ic_capks.c.rid, s.ic_capks.c.key_index))}
    for capk in UNIONPAY_TEST_CAPKS:
        if capk.key not in have_capks:
            ic_params.put_capk(conn, capk, actor=ACTOR, flag=False)
            created += 1
    return created


def _console_users(conn: Connection) -> int:
    try:
        mod = importlib.import_module("posgate.console.demo")
    except ModuleNotFoundError as e:
        if e.name and "posgate.console.demo".startswith(e.name):
            return 0
        raise
    result = mod.provision_users(conn)
    return result if isinstance(result, int) else 0
