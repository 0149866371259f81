"""PAN and track masking (PCI DSS): first 6 and last 4 digits at most, everywhere."""

from __future__ import annotations


def mask_pan(pan: str) -> str:
    """``6212142000000000012`` → ``621214*********0012``. Short or odd input is masked whole."""
    if len(pan) < 13:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def mask_track(track: str) -> str:
    """Mask the PAN part of a track and hide everything after the separator."""
    pan, sep, rest = track.partition("=")
    return mask_pan(pan) + (sep + "*" * len(rest) if sep else "")


def pan_from_track(track: str) -> str:
    return track.split("=", 1)[0]


def last4(pan: str) -> str:
    return pan[-4:]
