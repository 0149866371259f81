"""The built-in issuer on its own (docs/demo-data.md rules)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from posgate.crypto import encrypt_pin
from posgate.host.issuer import BuiltinIssuer
from posgate.host.memory import MemoryStore
from posgate.host.ports import IssuerRequest

NOW = datetime(2024, 5, 6, 2, 0, tzinfo=UTC)
PAN = "6212142000000000012"


def issuer() -> tuple[MemoryStore, BuiltinIssuer]:
    s = MemoryStore()
    s.add_card(PAN, "3012", 10_000)
    return s, BuiltinIssuer.with_random_zone_key(s, random.Random(1).randbytes)


def ask(i: BuiltinIssuer, kind: str, amount: int = 0, **kw: object) -> str:
    return i.authorize(IssuerRequest(kind=kind, pan=PAN, expiry=None, amount=amount, **kw), NOW).response_code  # type: ignore[arg-type]


def test_holds_captures_and_their_undo() -> None:
    s, i = issuer()
    card = lambda: s.card_by_pan(PAN)  # noqa: E731
    assert ask(i, "hold", 6_000) == "00" and card().held == 6_000  # type: ignore[union-attr]
    assert ask(i, "debit", 4_001) == "51"  # available is 4,000
    assert ask(i, "capture_hold", 10_001, hold_amount=6_000) == "51"
    assert ask(i, "capture_hold", 6_500, hold_amount=6_000) == "00"
    assert (card().balance, card().held) == (3_500, 0)  # type: ignore[union-attr]
    assert ask(i, "reverse_capture", 6_500, hold_amount=6_000) == "00"
    assert (card().balance, card().held) == (10_000, 6_000)  # type: ignore[union-attr]
    assert ask(i, "release_hold", 6_000) == "00" and card().held == 0  # type: ignore[union-attr]
    assert ask(i, "reverse_release", 6_000) == "00" and card().held == 6_000  # type: ignore[union-attr]
    r = i.authorize(IssuerRequest(kind="balance", pan=PAN, expiry=None, amount=0), NOW)
    assert r.balance == 4_000 and r.organisation == "CUP" and r.auth_code


def test_force_debit_ignores_balance_but_not_state() -> None:
    s, i = issuer()
    assert ask(i, "force_debit", 20_000) == "00"
    assert s.card_by_pan(PAN).balance == -10_000  # type: ignore[union-attr]
    s.update_card(s.pan_hash(PAN), state="stolen")
    assert ask(i, "force_debit", 1) == "43"
    assert ask(i, "reverse_debit", 20_000) == "00"  # undo is never refused


def test_pin_is_checked_under_the_zone_key() -> None:
    s, i = issuer()
    good = encrypt_pin(i.zone_key, "123456", PAN)
    bad = encrypt_pin(i.zone_key, "999999", PAN)
    assert ask(i, "debit", 1, pin_block=good, pin_key=i.zone_key) == "00"
    assert ask(i, "debit", 1, pin_block=bad, pin_key=i.zone_key) == "55"
    assert "123456" not in repr(i) and "123456" not in repr(s.card_by_pan(PAN))


def test_unknown_card() -> None:
    _, i = issuer()
    r = i.authorize(IssuerRequest(kind="debit", pan="6217000000000000020", expiry=None, amount=1), NOW)
    assert r.response_code == "14"
