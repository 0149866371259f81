"""Luhn (mod 10) check digit of card numbers, ISO/IEC 7812-1 Annex B.

Theory of operation: starting from the rightmost digit of the PAN *without* its check digit,
double every other digit (the rightmost one included), subtract 9 from results above 9 and
sum everything; the check digit is ``(10 - sum mod 10) mod 10``. A PAN is valid when its last
digit equals the check digit of the rest. Lives in the crypto package because PIN blocks
and the terminal simulator need it and it is pure arithmetic; errors never echo the PAN.
"""

from __future__ import annotations

__all__ = ["luhn_check_digit", "luhn_valid"]

# Value of digit d after doubling (and subtracting 9 when above 9).
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _is_digits(s: object) -> bool:
    return isinstance(s, str) and s.isascii() and s.isdigit()


def luhn_check_digit(partial: str) -> str:
    """The Luhn check digit to append to ``partial`` (the PAN without its check digit)."""
    if not _is_digits(partial):
        raise ValueError("Luhn input must be a non-empty string of decimal digits")
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = ord(ch) - 48
        total += _DOUBLED[d] if i % 2 == 0 else d
    return str((10 - total % 10) % 10)


def luhn_valid(pan: str) -> bool:
    """True if ``pan`` is at least 2 decimal digits and its last digit is the Luhn check digit."""
    if not _is_digits(pan) or len(pan) < 2:
        return False
    return luhn_check_digit(pan[:-1]) == pan[-1]
