"""Tables of the merchant's money side: settlement bank accounts, fee rules, payouts (issue 11).

* ``bank_accounts``: a merchant's settlement account. The account number is sealed under the
  local master key (keyring purpose ``bank_account``) like a PAN; pages and CSVs show
  ``account_masked`` only. A change is a new row ``pending`` until a second person approves it
  (maker-checker); the approved row becomes ``active`` and the one before ``replaced``.
* ``fee_rules``: per card kind (``debit``, ``credit``, ``foreign``, ``qr``, and ``d0`` for the
  same-day payout) a rate in hundredths of a percent and an optional cap per transaction in fen;
  ``merchant_id`` ``*`` holds the acquirer's defaults, any other value a merchant's override.
* ``payouts``: money sent to a merchant's bank account for a value date (``t1``: the business
  day's settled transactions less fees; ``d0``: same-day on request). ``payout_lines`` freeze
  each transaction's amount and fee as paid (a transaction is paid once: unique).
* ``payout_files``: each payout file written for the bank.

Like everything else, history is not edited: a decision is recorded on its row and audited.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from posgate.store.schema import Id, metadata

bank_accounts = Table(
    "bank_accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("merchant_id", String(15), nullable=False, index=True),
    Column("account_enc", LargeBinary, nullable=False),  # sealed, purpose b"bank_account"
    Column("account_masked", String(40), nullable=False),
    Column("bank_name", String(80), nullable=False),
    Column("account_name", String(80), nullable=False),
    Column("bank_code", String(12), nullable=False),  # CNAPS 12 digits (联行号)
    Column("status", String(16), nullable=False),  # pending | active | replaced | rejected
    Column("reason", Text, nullable=False),
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(64)),
    Column("decided_at", DateTime(timezone=True)),
    Column("decision_note", Text),
)

fee_rules = Table(
    "fee_rules",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("merchant_id", String(15), nullable=False),  # "*" = the acquirer's default
    Column("kind", String(8), nullable=False),  # debit | credit | foreign | qr | d0
    Column("rate_bp", Integer, nullable=False),  # hundredths of a percent: 50 = 0.50 %
    Column("cap", BigInteger),  # fen per transaction, None = no cap
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("merchant_id", "kind", name="uq_fee_rules_merchant_kind"),
)

payout_files = Table(
    "payout_files",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(80), nullable=False),
    Column("value_date", String(10), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("count", Integer, nullable=False),
    Column("total", BigInteger, nullable=False),  # fen
    Column("sha256", String(64), nullable=False),
)

payouts = Table(
    "payouts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("merchant_id", String(15), nullable=False, index=True),
    Column("kind", String(4), nullable=False),  # t1 | d0
    Column("business_day", String(10), nullable=False),  # lines of this day and earlier unpaid ones
    Column("value_date", String(10), nullable=False, index=True),
    Column("gross", BigInteger, nullable=False),  # Σ line amounts (fen)
    Column("fees", BigInteger, nullable=False),  # Σ line fees + d0_fee
    Column("d0_fee", BigInteger, nullable=False, server_default="0"),
    Column("amount", BigInteger, nullable=False),  # gross − fees: what the bank is asked to pay
    Column("status", String(16), nullable=False),  # pending | held | exported | paid | failed
    Column("reason", Text),  # why held or failed (the bank's words)
    Column("attempts", Integer, nullable=False, server_default="0"),  # files it was sent in
    Column("file_id", ForeignKey("payout_files.id")),
    Column("bank_account_id", ForeignKey("bank_accounts.id")),
    Column("bank_ref", String(40)),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("merchant_id", "kind", "business_day", name="uq_payouts_merchant_kind_day"),
)

payout_lines = Table(
    "payout_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("payout_id", ForeignKey("payouts.id"), nullable=False, index=True),
    Column("transaction_id", ForeignKey("transactions.id"), nullable=False, unique=True),
    Column("day", String(10), nullable=False),
    Column("amount", BigInteger, nullable=False),  # signed fen: + a sale, − a refund/void
    Column("fee", BigInteger, nullable=False),  # signed fen: + charged, − given back
    Column("card_kind", String(8), nullable=False),
    Column("rate_bp", Integer, nullable=False),
    Column("cap", BigInteger),
)
