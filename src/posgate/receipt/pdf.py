"""PDF slips: 58 mm wide pages, one per copy, with the cardholder's signature picture.

Theory of operation: the rows of :mod:`posgate.receipt.layout` are first measured (wrapped with
the real font metrics to the printable width) into a list of drawing steps, which gives the
page height; then one page of exactly that height is drawn, so a PDF slip looks like the paper
strip a thermal printer tears off. Each copy (merchant, cardholder ...) is its own page.

Chinese needs a font with CJK glyphs: reportlab's built-in CID font ``STSong-Light`` (Adobe's
Song, referenced by name, never embedded, shown by every PDF reader with the Adobe CJK pack or
its own substitute) draws the CJK runs of each line, so nothing has to be downloaded or shipped;
Latin runs (digits, card numbers, English labels) are drawn in Helvetica, whose metrics every
reader knows, so right-aligned amounts line up exactly. The PDF is
built with ``invariant=True``: the same slip always gives the same bytes (no creation date or
random document id), which keeps tests and archived slips reproducible.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from posgate.receipt.layout import Row, settlement_rows, slip_rows
from posgate.receipt.model import SettlementSlip, Slip
from posgate.receipt.text import char_width, wrap

FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
PAGE_WIDTH = 58 * mm
MARGIN = 3 * mm
TEXT_SIZE = 7.0
TITLE_SIZE = 10.0
AMOUNT_SIZE = 10.0
LEADING = 1.3  # line height / font size
SIGNATURE_MAX_W = PAGE_WIDTH - 2 * MARGIN
SIGNATURE_MAX_H = 22 * mm
QR_SIZE = 30 * mm  # a phone reads a version 3-4 code of this size from a hand's length
QR_QUIET = 4  # modules of white around the code, as the QR standard asks
LINK_SIZE = 5.0

_registered = False


def _font() -> str:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True
    return FONT


@dataclass(frozen=True, slots=True)
class _Step:
    kind: str  # text | rule | line | image | columns | qr
    text: str = ""
    size: float = TEXT_SIZE
    align: str = "left"  # left | centre | right
    height: float = 0.0
    image: Image.Image | None = None
    image_w: float = 0.0


def _runs(text: str) -> list[tuple[str, str]]:
    """(font, text) runs: CJK (and full-width punctuation) in the CID font, the rest in Helvetica."""
    cjk = _font()
    runs: list[tuple[str, str]] = []
    for ch in text:
        font = cjk if char_width(ch) == 2 else LATIN_FONT
        if runs and runs[-1][0] == font:
            runs[-1] = (font, runs[-1][1] + ch)
        else:
            runs.append((font, ch))
    return runs


def string_width(text: str, size: float) -> float:
    return sum(pdfmetrics.stringWidth(t, f, size) for f, t in _runs(text))


def _measure(size: float) -> Callable[[str], float]:
    return lambda s: string_width(s, size)


def _draw(c: Canvas, x: float, y: float, text: str, size: float) -> None:
    for font, run in _runs(text):
        c.setFont(font, size)
        c.drawString(x, y, run)
        x += pdfmetrics.stringWidth(run, font, size)


def _lines(text: str, size: float, width: float) -> list[str]:
    return wrap(text, width, _measure(size))


def _text(text: str, size: float = TEXT_SIZE, align: str = "left", width: float = PAGE_WIDTH - 2 * MARGIN) -> list[_Step]:
    return [_Step("text", line, size, align, size * LEADING) for line in _lines(text, size, width)]


def _signature_step(png: bytes) -> _Step | None:
    try:
        im = Image.open(io.BytesIO(png))
        im.load()
    except (OSError, ValueError):
        return None
    w, h = im.size
    scale = min(SIGNATURE_MAX_W / w, SIGNATURE_MAX_H / h, 1.0 * mm / 2)  # at most 0.5 mm per pixel
    return _Step("image", height=h * scale + 1 * mm, image=im.convert("L"), image_w=w * scale)


def _steps(rows: Sequence[Row], signature_png: bytes | None) -> list[_Step]:
    usable = PAGE_WIDTH - 2 * MARGIN
    measure = _measure(TEXT_SIZE)
    out: list[_Step] = []
    for row in rows:
        kind = row.kind
        if kind == "title":
            out += _text(row.a, TITLE_SIZE, "centre")
        elif kind == "centre":
            out += _text(row.a, TEXT_SIZE, "centre")
        elif kind == "rule":
            out.append(_Step("rule", height=TEXT_SIZE * 0.8))
        elif kind == "blank":
            out.append(_Step("text", "", height=TEXT_SIZE * LEADING))
        elif kind == "text":
            out += _text(row.a)
        elif kind == "pair":
            head = row.a + ":"
            if measure(head) > usable and row.alt:
                head = row.alt + ":"
            if row.b and measure(head + row.b) <= usable:
                out += _text(head + row.b)
            else:
                out += _text(head)
                if row.b:
                    out += _text(row.b)
        elif kind == "amount":
            out += _text(row.a)
            out += _text(row.b, AMOUNT_SIZE, "right")
        elif kind == "signature":
            picture = _signature_step(signature_png) if signature_png and row.a != "unsigned" else None
            if picture is not None:
                out.append(picture)
            elif row.a == "unsigned":  # room to sign on paper, above a line
                out.append(_Step("text", "", height=12 * mm))
                out.append(_Step("line", height=2 * mm))
            else:
                out.append(_Step("text", "", height=TEXT_SIZE))
            out += _text(row.b, TEXT_SIZE, "right" if row.a != "unsigned" else "left")
        elif kind == "qr":
            out.append(_Step("qr", row.a, height=QR_SIZE + 2 * mm))
            out += _text(row.a, LINK_SIZE, "centre")
        elif kind == "columns":
            # name left, count in the middle, amount right: three texts on one baseline.
            out.append(_Step("columns", "\x00".join((row.a, row.b, row.c)), TEXT_SIZE, height=TEXT_SIZE * LEADING))
        else:  # pragma: no cover
            raise ValueError(f"unknown row kind {kind!r}")
    return out


def _draw_qr(c: Canvas, url: str, x: float, y: float) -> None:
    """The link as a QR code of QR_SIZE, lower left corner at (x, y): one filled square per dark
    module (vector, so it stays sharp at any zoom and on any printer), quiet zone included."""
    import segno

    matrix = segno.make(url, error="m", micro=False).matrix
    n = len(matrix) + 2 * QR_QUIET
    cell = QR_SIZE / n
    c.saveState()
    c.setFillColorRGB(0, 0, 0)
    c.setStrokeColorRGB(0, 0, 0)
    c.setLineWidth(0)
    for r, row in enumerate(matrix):
        top = y + QR_SIZE - (r + QR_QUIET) * cell
        col = 0
        while col < len(row):  # one rectangle per run of dark modules: a third of the drawing ops
            if not row[col]:
                col += 1
                continue
            end = col
            while end < len(row) and row[end]:
                end += 1
            c.rect(x + (col + QR_QUIET) * cell, top - cell, (end - col) * cell, cell, stroke=0, fill=1)
            col = end
    c.restoreState()


def _draw_page(c: Canvas, steps: list[_Step]) -> None:
    height = sum(s.height for s in steps) + 2 * MARGIN
    c.setPageSize((PAGE_WIDTH, height))
    y = height - MARGIN
    left, right_edge = MARGIN, PAGE_WIDTH - MARGIN
    for s in steps:
        if s.kind == "rule":
            mid = y - s.height / 2
            c.setDash(1, 1.5)
            c.setLineWidth(0.4)
            c.line(left, mid, right_edge, mid)
            c.setDash()
        elif s.kind == "line":
            c.setLineWidth(0.6)
            c.line(left, y - 0.5 * mm, right_edge, y - 0.5 * mm)
        elif s.kind == "image" and s.image is not None:
            x = left + (right_edge - left - s.image_w) / 2
            c.drawImage(ImageReader(s.image), x, y - s.height + 0.5 * mm, width=s.image_w, height=s.height - 1 * mm)
        elif s.kind == "qr":
            _draw_qr(c, s.text, (PAGE_WIDTH - QR_SIZE) / 2, y - 1 * mm - QR_SIZE)
        elif s.kind == "columns":
            name, count, amount = s.text.split("\x00")
            base = y - s.size
            _draw(c, left, base, name, s.size)
            count_edge = left + (right_edge - left) * 0.62
            _draw(c, count_edge - string_width(count, s.size), base, count, s.size)
            _draw(c, right_edge - string_width(amount, s.size), base, amount, s.size)
        elif s.text:
            base = y - s.size
            w = string_width(s.text, s.size)
            x = (PAGE_WIDTH - w) / 2 if s.align == "centre" else right_edge - w if s.align == "right" else left
            _draw(c, x, base, s.text, s.size)
        y -= s.height
    c.showPage()


def _document(pages: list[list[_Step]], title: str) -> bytes:
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(PAGE_WIDTH, 100 * mm), invariant=True, pageCompression=1)
    c.setTitle(title)
    c.setCreator("posgate")
    for steps in pages:
        _draw_page(c, steps)
    c.save()
    return buf.getvalue()


def render_pdf(slips: Slip | Sequence[Slip], lang: str = "zh", *, bilingual: bool = True) -> bytes:
    """A PDF with one 58 mm page per slip (pass ``slip.copies()`` for merchant + cardholder)."""
    items = [slips] if isinstance(slips, Slip) else list(slips)
    if not items:
        raise ValueError("render_pdf needs at least one slip")
    pages = [_steps(slip_rows(s, lang, bilingual=bilingual), s.signature_png) for s in items]
    first = items[0]
    return _document(pages, f"POS slip {first.terminal_id} {first.batch_no}/{first.stan}")


def render_settlement_pdf(slip: SettlementSlip, lang: str = "zh", *, bilingual: bool = True) -> bytes:
    """The settlement slip as a one-page 58 mm PDF."""
    steps = _steps(settlement_rows(slip, lang, bilingual=bilingual), None)
    return _document([steps], f"Settlement {slip.terminal_id} batch {slip.batch_no}")
