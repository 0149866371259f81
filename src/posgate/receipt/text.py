"""Plain-text slips for a 58 mm thermal printer (32 columns) and for the TUI's screen.

Theory of operation: a slip is a list of lines, each at most ``width`` *display* columns wide.
A CJK character (East Asian width W or F) takes two columns on a thermal printer's font and in
a terminal, so every measurement goes through :func:`display_width`, never ``len``. Lines are
built from three shapes: centred titles, ``label:value`` pairs (the value goes on its own line,
right-aligned, when it does not fit beside the label) and wrapped paragraphs (English wraps at
spaces, Chinese between any two characters).

What is printed, in which order and words, comes from :mod:`posgate.receipt.layout` (shared
with the PDF); this module only fits it into columns. Bilingual by default, ``lang`` choosing
which language comes first. It never prints a clear PAN (the model masks it).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable

from posgate.receipt.layout import Row, settlement_rows, slip_rows
from posgate.receipt.model import SettlementSlip, Slip

WIDTH_58MM = 32
WIDTH_80MM = 48


def char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes on a printer or terminal: CJK characters count double."""
    return sum(char_width(ch) for ch in text)


def pad_to(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def right(text: str, width: int) -> str:
    return " " * max(0, width - display_width(text)) + text


def center(text: str, width: int) -> str:
    gap = max(0, width - display_width(text))
    return " " * (gap // 2) + text


def wrap(text: str, width: float, measure: Callable[[str], float] = display_width) -> list[str]:
    """Wrap to ``width``: at spaces in Latin text, anywhere between CJK characters.

    ``measure`` gives a string's width in the same unit as ``width`` (display columns by default;
    the PDF renderer passes its font's metrics in points).
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for token in _tokens(paragraph):
            if measure(line + token) <= width:
                line += token
                continue
            if line.strip():
                lines.append(line.rstrip())
            token = token.lstrip()
            while measure(token) > width:  # a word longer than the line: cut it
                cut = _fit(token, width, measure)
                lines.append(token[:cut])
                token = token[cut:]
            line = token
        lines.append(line.rstrip())
    return lines


def _fit(text: str, width: float, measure: Callable[[str], float]) -> int:
    for i in range(1, len(text) + 1):
        if measure(text[:i]) > width:
            return max(1, i - 1)
    return len(text)


def _tokens(text: str) -> Iterable[str]:
    """Latin words with their leading space, and single CJK characters."""
    word = ""
    for ch in text:
        if char_width(ch) == 2:
            if word:
                yield word
                word = ""
            yield ch
        elif ch == " ":
            if word:
                yield word
            word = " "
        else:
            word += ch
    if word:
        yield word


def _columns(name: str, count: str, amount: str, width: int) -> list[str]:
    """``name  count  amount``: count in a 5-column gap, amount at the right edge."""
    tail = right(count, 5) + right(amount, max(display_width(amount) + 1, 14))
    if display_width(name) + display_width(tail) > width:
        tail = right(count, 4) + right(amount, display_width(amount) + 1)
    if display_width(name) + display_width(tail) > width:  # narrow paper: name on its own line
        return [name, right(tail.strip(), width)]
    return [pad_to(name, width - display_width(tail)) + tail]


def lay_out(rows: list[Row], width: int = WIDTH_58MM) -> list[str]:
    """Fit rows into ``width`` display columns."""
    out: list[str] = []
    for row in rows:
        kind = row.kind
        if kind in ("title", "centre"):
            out += [center(line, width).rstrip() for line in wrap(row.a, width)]
        elif kind == "rule":
            out.append("-" * width)
        elif kind == "blank":
            out.append("")
        elif kind == "text":
            out += wrap(row.a, width)
        elif kind == "pair":
            head = row.a + ":"
            if display_width(head) > width and row.alt:
                head = row.alt + ":"  # "持卡人签名 CARDHOLDER SIGNATURE:" fits where "(...)" does not
            if row.b and display_width(head) + display_width(row.b) <= width:
                out.append(head + row.b)
            else:
                out += wrap(head, width)
                out += wrap(row.b, width) if row.b else []
        elif kind == "amount":
            out += wrap(row.a, width)
            out += [right(line, width) for line in wrap(row.b, width)]
        elif kind == "signature":
            out += wrap(row.b, width)
            if row.a == "unsigned":
                out += ["", "_" * width]
        elif kind == "columns":
            out += _columns(row.a, row.b, row.c, width)
        elif kind == "qr":  # a text printer gets the link itself (cut to the paper's width)
            out += wrap(row.a, width)
        else:  # pragma: no cover - a new row kind without a text form
            raise ValueError(f"unknown row kind {kind!r}")
    assert all(display_width(line) <= width for line in out), "a slip line is wider than the paper"
    return out


def render_lines(slip: Slip, width: int = WIDTH_58MM, lang: str = "zh", *, bilingual: bool = True) -> list[str]:
    return lay_out(slip_rows(slip, lang, bilingual=bilingual), width)


def render_text(slip: Slip, width: int = WIDTH_58MM, lang: str = "zh", *, bilingual: bool = True) -> str:
    """The slip as printer text, every line at most ``width`` display columns."""
    return "\n".join(render_lines(slip, width, lang, bilingual=bilingual)) + "\n"


def render_settlement_text(
    slip: SettlementSlip, width: int = WIDTH_58MM, lang: str = "zh", *, bilingual: bool = True
) -> str:
    """The settlement slip (结算总计单) as printer text."""
    return "\n".join(lay_out(settlement_rows(slip, lang, bilingual=bilingual), width)) + "\n"
