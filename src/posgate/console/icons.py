"""The home-screen icons of the console's web app (``static/icons/icon-192.png`` and ``-512``).

Drawn with Pillow from shapes only (no font file): the brand hexagon on the top bar's navy with
a white yuan sign, the content inside the middle 80 % so that a launcher may mask it to a circle
("maskable"). The PNGs are committed; after changing the drawing, write them again with
``python -m posgate.console.icons``.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

SIZES = (192, 512)
NAVY, BLUE, WHITE = (15, 27, 45), (74, 163, 255), (255, 255, 255)
OUT = Path(__file__).parent / "static" / "icons"


def draw(size: int) -> Image.Image:
    scale = 4  # draw large, then shrink: smooth edges without an anti-aliasing option
    n = size * scale
    im = Image.new("RGB", (n, n), NAVY)
    d = ImageDraw.Draw(im)
    c, r = n / 2, n * 0.34
    d.polygon([(c + r * math.cos(math.radians(60 * k + 30)), c + r * math.sin(math.radians(60 * k + 30))) for k in range(6)],
              fill=BLUE)  # fmt: skip
    w = max(1, round(n * 0.045))
    top, mid, bottom, arm = c - r * 0.55, c + r * 0.02, c + r * 0.62, r * 0.42
    d.line([(c - arm, top), (c, mid)], fill=WHITE, width=w, joint="curve")  # the yuan sign: a Y ...
    d.line([(c + arm, top), (c, mid)], fill=WHITE, width=w, joint="curve")
    d.line([(c, mid), (c, bottom)], fill=WHITE, width=w)
    for y in (mid + r * 0.02, mid + r * 0.24):  # ... with two bars
        d.line([(c - arm * 0.75, y), (c + arm * 0.75, y)], fill=WHITE, width=w)
    return im.resize((size, size), Image.Resampling.LANCZOS)


def write(out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for size in SIZES:
        path = out / f"icon-{size}.png"
        draw(size).save(path, format="PNG", optimize=True)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write():
        print(p)
