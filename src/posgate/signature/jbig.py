"""The signature image in field 62: a JBIG1 (ITU-T T.82) bi-level picture of at most 999 bytes.

Theory of operation
-------------------
A cardholder signs on a pad, a touch screen, a mouse in the TUI or a canvas in the console; what
arrives here is a picture (any PIL mode, any size, possibly with a transparent background) or
PNG bytes. :func:`encode_for_field62` turns it into what the wire carries (spec 3.13, D13):

1. **bi-level**: transparency is flattened onto white, the picture goes to grey, and every pixel
   darker than ``threshold`` is ink. JBIG's convention is 1 = black = ink.
2. **crop** to the bounding box of the ink plus a small white margin; a picture without ink is a
   :class:`BlankSignatureError` (a terminal must not upload an empty signature).
3. **fit**: encode at full size (at most ``max_width`` wide, the 58 mm printer's 384 dots); while
   the JBIG stream is longer than ``max_bytes``, scale the *cropped original* down again and
   re-encode. Each step shrinks by roughly the factor the size is over budget (a line drawing's
   JBIG size grows with its stroke length, i.e. linearly with the scale), clamped to 0.5–0.9 so a
   few steps always suffice. Scaling averages the grey values of the original (box filter) and
   then thresholds generously, so thin strokes survive the reduction instead of vanishing as
   they would with nearest-neighbour sampling. When even a picture ``min_side`` pixels on its
   short side does not fit, :class:`SignatureTooLargeError` says so.

The JBIG stream is single-plane, single-layer (d = 0, sequential) with typical prediction on and
one stripe per picture, which is the plainest T.82 any decoder (terminals, jbigkit's
``jbgtopbm``) reads. :func:`decode_jbig` checks the 20-byte header (BIH) before handing the data
to jbigkit, so a hostile upload cannot ask for a gigapixel canvas or a multi-plane image.

Nothing here does I/O except :class:`posgate.signature.pads.ImageFilePad`; everything is pure
and deterministic, so the terminal, the host and the console agree byte for byte.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import jbigkit
from PIL import Image

DEFAULT_MAX_BYTES = 999  # D13
PRINTER_DOTS = 384  # a 58 mm thermal head: 48 mm of print at 8 dots/mm
BIH_LEN = 20
MAX_PIXELS = 4096 * 4096  # refuse to decode larger canvases (a signature is ~384 x 160)

# jbigkit's flags (jbig.h). The Python binding's JbgFlags enum aliases several of them
# (DPLAST shows as SMID ...), so the numeric values are spelt out here.
_ORDER_ILEAVE_SMID = 0x02 | 0x01
_OPT_TPDON_TPBON_DPON = 0x10 | 0x08 | 0x04
_AT_MAX_X = 8


class SignatureError(ValueError):
    """A signature image cannot be used; the message says what to do next."""


class BlankSignatureError(SignatureError):
    pass


class SignatureTooLargeError(SignatureError):
    pass


@dataclass(frozen=True, slots=True)
class SignatureImage:
    """A signature ready for field 62: the JBIG1 bytes and the picture's size in pixels."""

    jbig: bytes
    width: int
    height: int

    def to_image(self) -> Image.Image:
        return decode_jbig(self.jbig)

    def to_png(self) -> bytes:
        return jbig_to_png(self.jbig)


# --------------------------------------------------------------------------- pictures


def load_image(image: Image.Image | bytes) -> Image.Image:
    """A PIL image from an image or from encoded bytes (PNG, or anything PIL reads)."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, bytes | bytearray | memoryview):
        try:
            im = Image.open(io.BytesIO(bytes(image)))
            im.load()
        except (OSError, SyntaxError, ValueError) as e:
            raise SignatureError(f"not a readable image ({e}); send a PNG") from None
        return im
    raise TypeError(f"expected a PIL image or PNG bytes, got {type(image).__name__}")


def to_grey(image: Image.Image) -> Image.Image:
    """Grey ('L') on white: transparent areas count as paper, not ink."""
    im = image
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode in ("RGB", "L") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(paper, rgba)
    return im.convert("L")


def to_bilevel(image: Image.Image, threshold: int = 128) -> Image.Image:
    """Mode '1', ink black (0) and paper white (255): pixels darker than ``threshold`` are ink."""
    grey = to_grey(image)
    return grey.point(lambda v: 0 if v < threshold else 255).convert("1", dither=Image.Dither.NONE)


def ink_bbox(bw: Image.Image) -> tuple[int, int, int, int] | None:
    """The (left, top, right, bottom) box of the ink in a bi-level picture, or None if blank."""
    return Image.eval(bw.convert("L"), lambda v: 255 - v).getbbox()


def crop_to_ink(bw: Image.Image, margin: int = 4) -> Image.Image:
    """Crop a bi-level picture to its ink plus ``margin`` white pixels on every side."""
    box = ink_bbox(bw)
    if box is None:
        raise BlankSignatureError("the signature is blank: ask the cardholder to sign")
    left, top, right, bottom = box
    inked = bw.crop(box)
    out = Image.new("1", (right - left + 2 * margin, bottom - top + 2 * margin), 1)
    out.paste(inked, (margin, margin))
    return out


def scale_bilevel(bw: Image.Image, size: tuple[int, int], keep: int = 160) -> Image.Image:
    """Shrink a bi-level picture so that thin strokes survive.

    Each target pixel averages its source area (box filter); it is ink when that area is darker
    than ``keep`` (out of 255), i.e. when about a third or more of it was ink.
    """
    if size == bw.size:
        return bw
    grey = bw.convert("L").resize(size, Image.Resampling.BOX)
    return grey.point(lambda v: 0 if v < keep else 255).convert("1", dither=Image.Dither.NONE)


# --------------------------------------------------------------------------- JBIG1


def encode_jbig(bw: Image.Image) -> bytes:
    """The JBIG1 stream of a bi-level picture (ink = black = 1), single plane, sequential."""
    if bw.mode != "1":
        bw = to_bilevel(bw)
    width, height = bw.size
    if width < 1 or height < 1:
        raise SignatureError("cannot encode an empty picture")
    # PIL's '1;I' raw packing is MSB first with 1 = black, exactly JBIG's plane layout.
    plane = bw.tobytes("raw", "1;I")
    enc = jbigkit.JbgEncoder(width, height, plane)
    enc.set_options(_ORDER_ILEAVE_SMID, _OPT_TPDON_TPBON_DPON, height, _AT_MAX_X, 0)
    return bytes(enc.encode_out())


def read_bih(jbig: bytes) -> dict[str, int]:
    """The JBIG1 bi-level image header (T.82 6.2): sizes, planes, stripe height, options."""
    if len(jbig) < BIH_LEN:
        raise SignatureError(f"not a JBIG1 image: {len(jbig)} bytes is shorter than its 20-byte header")
    dl, dh, planes, _reserved, xd, yd, l0, mx, my, order, options = struct.unpack(">BBBBIIIBBBB", jbig[:BIH_LEN])
    return {"dl": dl, "dh": dh, "planes": planes, "width": xd, "height": yd, "l0": l0,
            "mx": mx, "my": my, "order": order, "options": options}


def decode_jbig(jbig: bytes) -> Image.Image:
    """The picture in a JBIG1 stream as a PIL mode '1' image (ink black on white)."""
    jbig = bytes(jbig)
    bih = read_bih(jbig)
    if bih["planes"] != 1:
        raise SignatureError(f"a signature has one bit plane, this JBIG image has {bih['planes']}")
    width, height = bih["width"], bih["height"]
    if width == 0 or height == 0 or width * height > MAX_PIXELS:
        raise SignatureError(f"refusing a {width} x {height} JBIG image (a signature is at most 4096 x 4096)")
    dec = jbigkit.JbgDecoder()
    status, _used = dec.decode_in(jbig)
    if status != jbigkit.JbgErrno.EOK:
        if status == jbigkit.JbgErrno.EAGAIN:
            raise SignatureError("the JBIG image is truncated: upload the whole signature again")
        raise SignatureError(f"not a valid JBIG1 image: {status.to_string()}")
    plane = dec.get_plane(0)
    if plane is None:
        raise SignatureError("the JBIG image decoded to nothing")
    w, h = dec.get_width(), dec.get_height()
    return Image.frombytes("1", (w, h), bytes(plane), "raw", "1;I")


def encode_for_field62(
    image: Image.Image | bytes,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    threshold: int = 128,
    margin: int = 4,
    max_width: int = PRINTER_DOTS,
    min_side: int = 8,
) -> SignatureImage:
    """Bi-level, cropped to the ink, scaled down until its JBIG1 fits ``max_bytes`` (D13)."""
    if max_bytes < BIH_LEN + 2:
        raise SignatureTooLargeError(f"max_bytes={max_bytes} cannot even hold the 20-byte JBIG header")
    bw = crop_to_ink(to_bilevel(load_image(image), threshold), margin)
    full_w, full_h = bw.size
    scale = min(1.0, max_width / full_w)
    smallest: tuple[int, int, int] | None = None
    while True:
        size = (max(1, round(full_w * scale)), max(1, round(full_h * scale)))
        if min(size) < min(min_side, full_w, full_h):
            w, h, n = smallest or (full_w, full_h, -1)
            raise SignatureTooLargeError(
                f"the signature does not fit in {max_bytes} bytes even at {w} x {h} pixels ({n} bytes); "
                "ask the cardholder to sign again more simply"
            )
        jbig = encode_jbig(scale_bilevel(bw, size))
        if len(jbig) <= max_bytes:
            return SignatureImage(jbig, size[0], size[1])
        smallest = (size[0], size[1], len(jbig))
        scale *= min(0.9, max(0.5, 0.95 * max_bytes / len(jbig)))


def jbig_to_png(jbig: bytes) -> bytes:
    """PNG bytes of a field-62 signature (for the console and the PDF slip)."""
    out = io.BytesIO()
    decode_jbig(jbig).save(out, format="PNG", optimize=True)
    return out.getvalue()


def png_to_jbig(png: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> SignatureImage:
    """A signature drawn elsewhere (PNG) made ready for field 62."""
    return encode_for_field62(png, max_bytes)


def image_to_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
