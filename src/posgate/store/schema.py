"""The database schema (SQLAlchemy Core), shared by the host, the console and the audits.

Design rules:
* Card data per PCI DSS: no track data, PIN block or CVV column exists anywhere. A PAN is kept
  as a keyed hash (``pan_hash``, HMAC under the local master key: lookups and joins) plus its
  masked form (``pan_masked``) and, where the business needs the number back (refunds, batch
  upload reconciliation), encrypted under the local master key (``pan_enc``).
* Keys (TMK, working keys) are stored encrypted under the local master key, which lives in a
  file outside the database (``posgate.store.keyring``).
* Records are never edited to change history: a void, reversal, refund or make-up entry is a new
  row pointing at its original; the original's ``status`` summarises what happened to it.
* Amounts are integers in fen; times are UTC ``DateTime(timezone=True)``; business dates
  (sign-on day, settlement day) are ``YYYY-MM-DD`` strings in the acquirer's time zone.

Tables owned by the console (users, make-up entries, refund requests, backups) are declared in
``posgate.store.console_schema`` on the same ``metadata``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal_column,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite's rowid alias must be INTEGER

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

merchants = Table(
    "merchants",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("merchant_id", String(15), nullable=False, unique=True),  # field 42
    Column("name", String(80), nullable=False),  # zh-CN name (receipts, field 62 tag 22)
    Column("name_en", String(80), nullable=False, server_default=""),
    Column("mcc", String(4), nullable=False),
    Column("fee_rate_bp", Integer, nullable=False),  # MDR in hundredths of a percent: 60 = 0.60 %
    Column("settlement_days", Integer, nullable=False, server_default="1"),  # T+1
    Column("status", String(16), nullable=False, server_default="active"),  # active | suspended
    Column("suspended_reason", Text),
    Column("suspended_at", DateTime(timezone=True)),
    Column("suspended_by", String(64)),  # "system:D6" for the 3-day rule, else a console user
    Column("created_at", DateTime(timezone=True), nullable=False),
)

terminals = Table(
    "terminals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("terminal_id", String(8), nullable=False, unique=True),  # field 41
    Column("merchant_pk", ForeignKey("merchants.id"), nullable=False, index=True),
    Column("tmk_enc", LargeBinary, nullable=False),
    Column("tmk_kcv", String(8), nullable=False),  # shown to the key custodian, never the key
    Column("device_serial", String(32)),  # recorded at the first sign-on (D7)
    Column("pending_serial", String(32)),  # a refused new device awaiting approval (D7)
    Column("approved_serial", String(32)),  # approved replacement; adopted at its next sign-on
    Column("status", String(16), nullable=False, server_default="active"),  # active | suspended
    Column("suspended_reason", Text),
    Column("batch_no", String(6), nullable=False, server_default="000001"),  # the host's open batch
    Column("signed_on_day", String(10)),  # YYYY-MM-DD (acquirer tz) of the last successful sign-on
    Column("last_sign_on_at", DateTime(timezone=True)),
    Column("signed_off", Boolean, nullable=False, server_default="0"),
    Column("operator", String(3)),  # 63.1 of the last sign-on
    Column("key_scheme", String(3)),  # 001 | 003 | 004
    Column("pik_enc", LargeBinary),  # working keys, encrypted under the local master key
    Column("mak_enc", LargeBinary),
    Column("tdk_enc", LargeBinary),
    Column("mac_algorithm", String(8), nullable=False, server_default="cup"),  # cup | x919
    Column("algorithm", String(8), nullable=False, server_default="des"),  # des | sm4 (国密): the TMK's cipher
    # The dialect profile the terminal speaks (posgate.dialect.profiles; migration 0006).
    Column("dialect", String(16), nullable=False, server_default="cup"),
    Column("mac_failures", Integer, nullable=False, server_default="0"),  # consecutive A0s
    Column("resign_requested", Boolean, nullable=False, server_default="0"),  # header requirement 3
    Column("resign_reason", String(32)),  # support | mac_failures | cutoff
    Column("params", JSON, nullable=False, default=dict),  # downloadable parameters (3.12)
    Column("params_pending", Boolean, nullable=False, server_default="0"),  # header requirement 1
    Column("last_status_upload", JSON),  # field 62 of the last 0820/362, decoded
    Column("last_response_codes", JSON),  # the last few codes, for the console
    Column("created_at", DateTime(timezone=True), nullable=False),
    # IC public keys / IC parameters changed since the terminal's last download: header
    # requirement 4 / 5 in its next reply (docs/dialect.md 3.12; migration 0008).
    Column("capk_pending", Boolean, nullable=False, server_default="0"),
    Column("aid_pending", Boolean, nullable=False, server_default="0"),
)

sign_ons = Table(
    "sign_ons",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("day", String(10), nullable=False),  # acquirer-tz business day
    Column("terminal_id", String(8), nullable=False, index=True),
    Column("merchant_id", String(15), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # sign_on | sign_off | refused
    Column("cause", String(32)),  # daily | make_up_temporary | make_up_formal | remote | ...
    Column("operator", String(3)),
    Column("device_serial", String(32)),
    Column("key_scheme", String(3)),
    Column("batch_no", String(6)),
    Column("stan", String(6)),
    Column("response_code", String(2), nullable=False),
    Column("detail", Text),
)

cards = Table(
    "cards",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("pan_hash", String(64), nullable=False, unique=True),
    Column("pan_masked", String(19), nullable=False),
    Column("pan_enc", LargeBinary, nullable=False),
    Column("expiry", String(4), nullable=False),  # YYMM
    Column("kind", String(8), nullable=False),  # debit | credit
    Column("organisation", String(3), nullable=False),  # CUP | VIS | MCC ... (63.1 in replies)
    Column("chip", Boolean, nullable=False, server_default="0"),
    Column("state", String(16), nullable=False),  # active | lost | stolen | restricted | blocked
    Column("balance", BigInteger, nullable=False),  # fen; credit cards: available credit
    Column("held", BigInteger, nullable=False, server_default="0"),  # open pre-authorisations
    Column("per_txn_limit", BigInteger),  # fen, None = no limit
    Column("pin_verifier", String(64), nullable=False),  # HMAC(master, pan || pin); never the PIN
    Column("pin_tries", Integer, nullable=False, server_default="0"),
    Column("pin_tries_day", String(10)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Chip (0007): IMK-AC ‖ IMK-SMI ‖ IMK-SMC sealed under the local master key (purpose ``icc``),
    # and the highest ATC of a verified ARQC (replays at or below it are declined).
    Column("icc_keys_enc", LargeBinary),
    Column("icc_atc", Integer),
)

batches = Table(
    "batches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("terminal_id", String(8), nullable=False),
    Column("batch_no", String(6), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False, server_default="open"),  # open | closed
    UniqueConstraint("terminal_id", "batch_no", name="uq_batches_terminal_batch"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("day", String(10), nullable=False),  # acquirer-tz business day (indexed with created_at below)
    Column("terminal_id", String(8), nullable=False),
    Column("merchant_id", String(15), nullable=False, index=True),
    Column("batch_no", String(6), nullable=False),
    Column("stan", String(6), nullable=False),
    Column("mti", String(4), nullable=False),
    Column("operation", String(24), nullable=False),  # sale | void | refund | reversal | ...
    Column("processing_code", String(6)),
    Column("amount", BigInteger, nullable=False, server_default="0"),  # fen
    Column("currency", String(3), nullable=False, server_default="156"),
    Column("pan_hash", String(64), index=True),
    Column("pan_masked", String(19)),
    Column("pan_enc", LargeBinary),
    Column("card_organisation", String(3)),  # CUP = domestic totals, else foreign
    Column("entry_mode", String(3)),
    Column("response_code", String(2), nullable=False),
    Column("auth_code", String(6)),
    Column("rrn", String(12), index=True),
    # approved | declined | reversed | voided | refunded | partially_refunded | completed | annulled
    Column("status", String(20), nullable=False),
    Column("original_id", ForeignKey("transactions.id"), index=True),
    Column("refunded_amount", BigInteger, nullable=False, server_default="0"),
    Column("request_digest", String(64), nullable=False),  # D8: same request ⇒ same reply
    Column("reply", LargeBinary),  # header + body of the reply, to answer retransmissions
    Column("trace", JSON),  # the pipeline's step trace: [[participant, vote, detail], ...]
    Column("signed", Boolean, nullable=False, server_default="0"),
    Column("settlement_id", ForeignKey("settlements.id")),
    Column("source", String(16), nullable=False, server_default="terminal"),  # terminal | makeup | batch_upload
    Column("operator", String(3)),
    # Routing (0014, docs/upstream.md): who authorised it ("issuer" = the built-in issuer, else
    # the upstream link's name), whether the acquirer's stand-in approved it, and the STAN and
    # RRN of the message sent upstream (what the network's records and clearing file carry).
    Column("route", String(32), nullable=False, server_default="issuer"),
    Column("stand_in", Boolean, nullable=False, server_default="0"),
    Column("upstream_stan", String(6)),
    Column("upstream_rrn", String(12), index=True),
    UniqueConstraint("terminal_id", "batch_no", "stan", "mti", name="uq_transactions_message"),
)

# The console's searches on a grown ledger (migration 0013, docs/benchmarks.md "Growth"): a
# date range newest first (day, then time: replaces the index on day alone), a terminal's or a
# merchant's newest first, an exact amount, and a card by its last four digits (an expression
# index: ``LIKE '%0012'`` can use no index). ``PAN_LAST4`` is the expression the
# search must write, literally the same (a bound ``3`` would not match the index).
PAN_LAST4 = func.substr(transactions.c.pan_masked, func.length(transactions.c.pan_masked) - literal_column("3"))
Index("ix_transactions_day_created", transactions.c.day, transactions.c.created_at)
Index("ix_transactions_terminal_created", transactions.c.terminal_id, transactions.c.created_at)
Index("ix_transactions_merchant_created", transactions.c.merchant_id, transactions.c.created_at)
Index("ix_transactions_amount", transactions.c.amount)
Index("ix_transactions_pan_last4", PAN_LAST4)

settlements = Table(
    "settlements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("day", String(10), nullable=False),
    Column("terminal_id", String(8), nullable=False, index=True),
    Column("merchant_id", String(15), nullable=False, index=True),
    Column("batch_no", String(6), nullable=False),
    Column("stan", String(6), nullable=False),
    Column("terminal_totals", JSON, nullable=False),  # field 48 as sent, decoded
    Column("host_totals", JSON, nullable=False),  # what the host counted for the batch
    Column("domestic_result", String(1), nullable=False),  # 1 balanced | 2 not | 3 error
    Column("foreign_result", String(1), nullable=False),
    Column("uploaded", Integer, nullable=False, server_default="0"),  # batch-upload count
    Column("upload_end", String(3)),  # 207 | 202 when the batch upload finished
    Column("status", String(16), nullable=False),  # balanced | unbalanced | reconciled
)

differences = Table(
    "differences",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("settlement_id", ForeignKey("settlements.id"), nullable=False, index=True),
    Column("terminal_id", String(8), nullable=False),
    Column("merchant_id", String(15), nullable=False, index=True),
    Column("batch_no", String(6), nullable=False),
    Column("stan", String(6)),
    Column("kind", String(24), nullable=False),  # missing_on_host | missing_on_terminal | amount_mismatch
    Column("terminal_amount", BigInteger),
    Column("host_amount", BigInteger),
    Column("pan_masked", String(19)),
    Column("transaction_id", ForeignKey("transactions.id")),
    Column("status", String(16), nullable=False, server_default="open"),  # open | resolved
    Column("resolved_by", String(64)),
    Column("resolution", Text),
)

signatures = Table(
    "signatures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("transaction_id", ForeignKey("transactions.id"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("source", String(16), nullable=False),  # terminal (0820/800) | makeup (console)
    Column("jbig", LargeBinary),  # the JBIG1 image as uploaded (D13)
    Column("png", LargeBinary),  # rendered for pages and PDF receipts
    Column("width", Integer),
    Column("height", Integer),
    Column("receipt_tlv", LargeBinary),  # field 55 of the upload (3.13)
    Column("captured_by", String(64)),  # console user for a make-up signature
)

risk_rules = Table(
    "risk_rules",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),  # card_velocity | merchant_amount | card_amount
    Column("params", JSON, nullable=False),
    Column("response_code", String(2), nullable=False),  # 65 | 61 ...
    Column("enabled", Boolean, nullable=False, server_default="1"),
)

risk_hits = Table(
    "risk_hits",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("rule_id", ForeignKey("risk_rules.id"), nullable=False),
    Column("terminal_id", String(8), nullable=False),
    Column("merchant_id", String(15), nullable=False),
    Column("pan_masked", String(19)),
    Column("amount", BigInteger),
    Column("detail", Text),
)

routes = Table(
    "routes",
    metadata,
    # The routing table (0014): a PAN whose first len(bin_low) digits lie in [bin_low, bin_high]
    # goes to ``target`` ("issuer" or an upstream link's name); the highest priority wins, then
    # the longest range prefix. No row matches → the built-in issuer (the demo as it always was).
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("bin_low", String(19), nullable=False),
    Column("bin_high", String(19), nullable=False),
    Column("target", String(32), nullable=False),
    Column("card_kind", String(8), nullable=False, server_default="debit"),  # debit | credit | foreign | qr
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

stand_in_limits = Table(
    "stand_in_limits",
    metadata,
    # Stand-in (STIP, 0014): while a link is unreachable, approve a debit of this card kind (at
    # this merchant, or any when null) up to ``max_amount`` fen, and the card's approved debits
    # of the last 24 hours up to ``daily_max``. No row for the kind: no stand-in, decline 92.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("card_kind", String(8), nullable=False),
    Column("merchant_id", String(15)),
    Column("max_amount", BigInteger, nullable=False),
    Column("daily_max", BigInteger),
)

counters = Table(
    "counters",
    metadata,
    # RRN and auth-code ranges are reserved in blocks by each host process (unique across processes).
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    # Append-only: triggers (SQLite and PostgreSQL) refuse UPDATE and DELETE.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(64), nullable=False),  # console user, "system:D6", "host", "cli"
    Column("action", String(64), nullable=False),
    Column("object_type", String(32)),
    Column("object_id", String(64)),
    Column("merchant_id", String(15), index=True),
    Column("before", JSON),
    Column("after", JSON),
    Column("detail", Text),
)


# IC card parameters per application (AID) and CA public keys, downloaded by terminals with
# 0800/380 and 0800/370 (docs/dialect.md 3.12; posgate.dialect.ic_params; migration 0008).
ic_aids = Table(
    "ic_aids",
    metadata,
    Column("aid", String(32), primary_key=True),  # 9F06, hex
    Column("app_version", String(4), nullable=False),  # 9F08
    Column("asi", Integer, nullable=False),  # DF01
    Column("tac_default", String(10), nullable=False),  # DF11
    Column("tac_online", String(10), nullable=False),  # DF12
    Column("tac_denial", String(10), nullable=False),  # DF13
    Column("floor_limit", BigInteger, nullable=False),  # 9F1B, fen
    Column("threshold", BigInteger, nullable=False),  # DF15, fen
    Column("max_target_percent", Integer, nullable=False),  # DF16
    Column("target_percent", Integer, nullable=False),  # DF17
    Column("ddol", String(504), nullable=False),  # DF14
    Column("online_pin", Boolean, nullable=False),  # DF18
    Column("ec_limit", BigInteger, nullable=False),  # 9F7B, fen
    Column("cl_floor_limit", BigInteger, nullable=False),  # DF19, fen
    Column("cl_transaction_limit", BigInteger, nullable=False),  # DF20, fen
    Column("cvm_limit", BigInteger, nullable=False),  # DF21, fen: the no-CVM (免密免签) limit
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

ic_capks = Table(
    "ic_capks",
    metadata,
    Column("rid", String(10), primary_key=True),  # 9F06
    Column("key_index", String(2), primary_key=True),  # 9F22
    Column("expiry", String(8), nullable=False),  # DF05, YYYYMMDD
    Column("hash_algorithm", String(2), nullable=False),  # DF06
    Column("algorithm", String(2), nullable=False),  # DF07
    Column("modulus", Text, nullable=False),  # DF02, hex
    Column("exponent", String(6), nullable=False),  # DF04, hex
    Column("check_value", String(40), nullable=False),  # DF03, SHA-1 hex (verified when added)
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
