"""Slips: the CUP sales slip (签购单) and the settlement slip (结算总计单), as text and as PDF.

:class:`Slip` / :class:`SettlementSlip` hold what a slip says (PAN always masked);
:func:`render_text` lays a slip out for a 58 mm printer (32 columns, CJK counted double);
:func:`render_pdf` makes a 58 mm wide PDF with the Chinese CID font and the signature picture.
"""

from posgate.receipt.model import (
    COPY_NAMES,
    LABELS,
    Copy,
    SettlementSlip,
    Slip,
    entry_mode_name,
    label,
)
from posgate.receipt.text import display_width, render_lines, render_settlement_text, render_text


def render_pdf(slips: Slip | list[Slip], lang: str = "zh", *, bilingual: bool = True) -> bytes:
    """One 58 mm PDF page per slip (see :mod:`posgate.receipt.pdf`; reportlab loads on first use)."""
    from posgate.receipt.pdf import render_pdf as _render

    return _render(slips, lang, bilingual=bilingual)


def render_settlement_pdf(slip: SettlementSlip, lang: str = "zh", *, bilingual: bool = True) -> bytes:
    """The settlement slip as a one-page 58 mm PDF."""
    from posgate.receipt.pdf import render_settlement_pdf as _render

    return _render(slip, lang, bilingual=bilingual)


__all__ = [
    "COPY_NAMES",
    "LABELS",
    "Copy",
    "SettlementSlip",
    "Slip",
    "display_width",
    "entry_mode_name",
    "label",
    "render_lines",
    "render_pdf",
    "render_settlement_pdf",
    "render_settlement_text",
    "render_text",
]
