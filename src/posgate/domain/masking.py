"""PAN and track masking (PCI DSS): first 6 and last 4 digits at most, everywhere."""

from __future__ import annotations


def mask_pan(pan: str) -> str:
    """``6212142000000000012`` → ``621214*********0012``. Short or odd input is masked whole."""
    if len(pan) < 13:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def split_track(track: str) -> tuple[str, str | None]:
    """A clear track as (PAN, what follows the separator), or (track, None) without one.

    The one reader of a track's PAN: the separator is written ``=`` (the wire codec, the card
    reader) or as its BCD nibble ``D`` (docs/dialect.md 6.3), and a track must read the same in both
    forms. Splitting on ``=`` alone once misread a decrypted track in the ``D`` form as one
    long PAN (declined ``14``)."""
    for i, ch in enumerate(track):
        if ch in "=Dd":
            return track[:i], track[i + 1 :]
    return track, None


def mask_track(track: str) -> str:
    """Mask the PAN part of a track and hide everything after the separator."""
    pan, rest = split_track(track)
    return mask_pan(pan) + ("=" + "*" * len(rest) if rest is not None else "")


def pan_from_track(track: str) -> str:
    return split_track(track)[0]


def last4(pan: str) -> str:
    return pan[-4:]
