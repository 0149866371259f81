"""Signature pads: where a signature picture comes from.

A :class:`SignaturePad` is anything with ``capture() -> PIL.Image.Image``; a vendor pad SDK
plugs in by implementing that one method. Two pads ship here:

* :class:`ImageFilePad` reads a picture file (a pad that saves to disk, a scanned signature,
  a test fixture);
* :class:`StrokesPad` collects strokes — lists of points, as drawn with a mouse in the TUI or
  on a canvas in the console — and renders them with PIL as black lines on white.

Coordinates are floats in the drawing surface's own units; ``scale`` maps them to pixels (the
TUI draws in character cells, about 8 x 16 pixels each; a browser canvas already is in pixels).
The rendered picture is not yet cropped or scaled: :func:`posgate.signature.encode_for_field62`
does that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image, ImageDraw

Point = tuple[float, float]
Stroke = Sequence[Point]


@runtime_checkable
class SignaturePad(Protocol):
    """Something that captures a cardholder's signature as a picture."""

    def capture(self) -> Image.Image: ...


class ImageFilePad:
    """A pad that reads the signature from a picture file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def capture(self) -> Image.Image:
        with Image.open(self.path) as im:
            im.load()
            return im.copy()


def parse_strokes(data: object) -> list[list[Point]]:
    """Strokes from JSON-like data: ``[[[x, y], ...], ...]`` or ``[[{"x": x, "y": y}, ...], ...]``."""
    if not isinstance(data, Sequence) or isinstance(data, str | bytes):
        raise ValueError("strokes must be a list of point lists")
    strokes: list[list[Point]] = []
    for stroke in data:
        if not isinstance(stroke, Sequence) or isinstance(stroke, str | bytes):
            raise ValueError("each stroke must be a list of points")
        points: list[Point] = []
        for p in stroke:
            if isinstance(p, Mapping):
                x, y = p["x"], p["y"]
            elif isinstance(p, Sequence) and len(p) == 2:
                x, y = p
            else:
                raise ValueError("a point is [x, y] or {'x': x, 'y': y}")
            points.append((float(x), float(y)))
        if points:
            strokes.append(points)
    return strokes


def render_strokes(
    strokes: Iterable[Stroke],
    size: tuple[int, int] | None = None,
    *,
    pen: int = 3,
    scale: float | tuple[float, float] = 1.0,
) -> Image.Image:
    """Black strokes ``pen`` pixels wide on a white 'L' picture.

    ``size`` defaults to the strokes' extent plus a margin. A one-point stroke is a dot.
    """
    sx, sy = (scale, scale) if isinstance(scale, int | float) else scale
    scaled = [[(x * sx, y * sy) for x, y in stroke] for stroke in strokes]
    if size is None:
        xs = [x for s in scaled for x, _ in s] or [0.0]
        ys = [y for s in scaled for _, y in s] or [0.0]
        size = (int(max(xs)) + pen * 2 + 1, int(max(ys)) + pen * 2 + 1)
    im = Image.new("L", size, 255)
    draw = ImageDraw.Draw(im)
    r = pen / 2
    for points in scaled:
        if not points:
            continue
        if len(points) > 1:
            draw.line(points, fill=0, width=pen, joint="curve")
        for x, y in (points[0], points[-1]) if len(points) > 1 else points:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
    return im


class StrokesPad:
    """A pad fed with strokes (mouse or canvas); ``capture`` renders them."""

    def __init__(
        self,
        strokes: Iterable[Stroke] = (),
        *,
        size: tuple[int, int] | None = None,
        pen: int = 3,
        scale: float | tuple[float, float] = 1.0,
    ) -> None:
        self.strokes: list[list[Point]] = [list(s) for s in strokes]
        self.size = size
        self.pen = pen
        self.scale = scale

    def begin_stroke(self, x: float, y: float) -> None:
        self.strokes.append([(x, y)])

    def add_point(self, x: float, y: float) -> None:
        if not self.strokes:
            self.begin_stroke(x, y)
        else:
            self.strokes[-1].append((x, y))

    def clear(self) -> None:
        self.strokes.clear()

    @property
    def empty(self) -> bool:
        return not any(self.strokes)

    def capture(self) -> Image.Image:
        return render_strokes(self.strokes, self.size, pen=self.pen, scale=self.scale)
