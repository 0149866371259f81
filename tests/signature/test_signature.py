"""posgate.signature: JBIG1 for field 62 (D13), receipt TLV for field 55 (3.13), pads."""

from __future__ import annotations

import io
import random
from datetime import datetime

import pytest
from PIL import Image, ImageDraw

from posgate.iso8583.errors import CodecError
from posgate.signature import (
    BlankSignatureError,
    ImageFilePad,
    SignatureError,
    SignatureImage,
    SignaturePad,
    SignatureTooLargeError,
    StrokesPad,
    decode_jbig,
    encode_for_field62,
    encode_jbig,
    jbig_to_png,
    parse_receipt_tlv,
    parse_strokes,
    png_to_jbig,
    receipt_tlv,
    render_strokes,
    to_bilevel,
)
from posgate.signature.jbig import crop_to_ink, ink_bbox, read_bih, scale_bilevel

# A "Zhang San"-like scrawl: three strokes in canvas pixels.
STROKES = [
    [(40, 60), (90, 40), (140, 60), (120, 110), (80, 150), (150, 160)],
    [(200, 50), (200, 170), (260, 120), (300, 170), (330, 60)],
    [(380, 90), (450, 90), (420, 40), (420, 170), (480, 160), (560, 80)],
]


def _grid(bw: Image.Image, cols: int, rows: int) -> list[list[bool]]:
    """Which cells of a cols x rows grid hold any ink."""
    w, h = bw.size
    grey = bw.convert("L")
    out = []
    for r in range(rows):
        row = []
        for c in range(cols):
            box = (c * w // cols, r * h // rows, max((c + 1) * w // cols, c * w // cols + 1), max((r + 1) * h // rows, r * h // rows + 1))
            row.append(grey.crop(box).getextrema()[0] < 128)
        out.append(row)
    return out


def _agreement(a: list[list[bool]], b: list[list[bool]]) -> float:
    cells = [x == y for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True)]
    return sum(cells) / len(cells)


def test_strokes_round_trip_keep_the_ink_in_place():
    pad = StrokesPad(STROKES, pen=4)
    picture = pad.capture()
    sig = encode_for_field62(picture)
    assert isinstance(sig, SignatureImage)
    assert len(sig.jbig) <= 999
    decoded = decode_jbig(sig.jbig)
    assert decoded.mode == "1" and decoded.size == (sig.width, sig.height)
    # Compare with what went in (cropped the same way), on a coarse grid.
    reference = scale_bilevel(crop_to_ink(to_bilevel(picture)), decoded.size)
    assert _agreement(_grid(decoded, 24, 8), _grid(reference, 24, 8)) >= 0.95
    # The ink really is there: the scrawl spans the picture from left to right.
    grid = _grid(decoded, 6, 2)
    assert all(grid[0][c] or grid[1][c] for c in range(6))
    assert sum(map(sum, _grid(decoded, 24, 8))) > 30


def test_small_signature_is_lossless_and_not_scaled():
    picture = render_strokes([[(10, 10), (60, 30), (110, 10)]], pen=2)
    sig = encode_for_field62(picture, margin=4)
    cropped = crop_to_ink(to_bilevel(picture), 4)
    assert (sig.width, sig.height) == cropped.size
    assert decode_jbig(sig.jbig).tobytes() == cropped.tobytes()


def test_jbig_stream_is_plain_t82_single_plane_sequential():
    sig = encode_for_field62(render_strokes(STROKES))
    bih = read_bih(sig.jbig)
    assert (bih["dl"], bih["dh"], bih["planes"]) == (0, 0, 1)
    assert (bih["width"], bih["height"]) == (sig.width, sig.height)
    assert bih["l0"] == sig.height  # one stripe


def test_large_noisy_image_is_scaled_down_until_it_fits():
    rng = random.Random(7)
    im = Image.new("L", (1600, 700), 255)
    draw = ImageDraw.Draw(im)
    for _ in range(4000):  # speckle everywhere
        x, y = rng.randrange(1600), rng.randrange(700)
        draw.point((x, y), fill=0)
    for _ in range(12):  # and a dense scribble
        pts = [(rng.randrange(1600), rng.randrange(700)) for _ in range(30)]
        draw.line(pts, fill=0, width=3)
    full = encode_jbig(crop_to_ink(to_bilevel(im)))
    assert len(full) > 999  # at full size it would not fit
    sig = encode_for_field62(im)
    assert len(sig.jbig) <= 999
    assert sig.width < 1600 and sig.height < 700
    assert decode_jbig(sig.jbig).size == (sig.width, sig.height)


def test_wide_signature_is_limited_to_the_printer_width():
    sig = encode_for_field62(render_strokes([[(0, 0), (2000, 40)]], pen=3))
    assert sig.width <= 384


def test_tighter_budget_gives_smaller_image():
    big = encode_for_field62(render_strokes(STROKES))
    small = encode_for_field62(render_strokes(STROKES), max_bytes=150)
    assert len(small.jbig) <= 150
    assert small.width < big.width


def test_impossible_budget_raises_a_clear_error():
    noise = Image.effect_noise((600, 300), 200)
    with pytest.raises(SignatureTooLargeError, match="does not fit in 22 bytes"):
        encode_for_field62(noise, max_bytes=22)
    with pytest.raises(SignatureTooLargeError, match="header"):
        encode_for_field62(noise, max_bytes=10)


def test_blank_signature_is_refused():
    with pytest.raises(BlankSignatureError, match="blank"):
        encode_for_field62(Image.new("L", (300, 100), 255))
    with pytest.raises(BlankSignatureError):
        encode_for_field62(StrokesPad(size=(50, 50)).capture())


def test_transparent_canvas_png_counts_transparent_as_paper():
    # A browser canvas: transparent (0,0,0,0) background, opaque black strokes.
    im = Image.new("RGBA", (400, 150), (0, 0, 0, 0))
    ImageDraw.Draw(im).line([(20, 20), (380, 130)], fill=(0, 0, 0, 255), width=4)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    sig = png_to_jbig(buf.getvalue())
    box = ink_bbox(to_bilevel(im))
    assert box is not None and box[0] >= 15 and box[1] >= 15  # not the whole canvas
    grey = decode_jbig(sig.jbig).convert("L")
    # Top-right and bottom-left corners are paper.
    assert grey.getpixel((sig.width - 3, 2)) == 255 and grey.getpixel((2, sig.height - 3)) == 255


def test_png_helpers_round_trip():
    sig = encode_for_field62(render_strokes(STROKES, scale=0.5))
    png = jbig_to_png(sig.jbig)
    assert png.startswith(b"\x89PNG")
    assert sig.to_png() == png
    again = png_to_jbig(png)
    # Small enough not to be scaled: the ink survives PNG and re-encoding bit for bit.
    assert crop_to_ink(again.to_image(), 0).tobytes() == crop_to_ink(sig.to_image(), 0).tobytes()


def test_decode_rejects_garbage_and_truncation():
    sig = encode_for_field62(render_strokes(STROKES))
    with pytest.raises(SignatureError, match="header"):
        decode_jbig(b"\x00\x01")
    with pytest.raises(SignatureError, match="truncated"):
        decode_jbig(sig.jbig[:-40])
    huge = bytearray(sig.jbig)
    huge[4:12] = (100000).to_bytes(4, "big") + (100000).to_bytes(4, "big")
    with pytest.raises(SignatureError, match="refusing"):
        decode_jbig(bytes(huge))
    planes = bytearray(sig.jbig)
    planes[2] = 8
    with pytest.raises(SignatureError, match="one bit plane"):
        decode_jbig(bytes(planes))
    with pytest.raises(SignatureError, match="readable image"):
        png_to_jbig(b"not a png")


def test_pads_satisfy_the_protocol(tmp_path):
    path = tmp_path / "sig.png"
    render_strokes(STROKES).save(path)
    file_pad = ImageFilePad(path)
    strokes_pad = StrokesPad(scale=(8, 16))
    strokes_pad.begin_stroke(1, 1)
    strokes_pad.add_point(10, 2)
    strokes_pad.add_point(20, 1)
    strokes_pad.begin_stroke(25, 2)  # a dot
    for pad in (file_pad, strokes_pad):
        assert isinstance(pad, SignaturePad)
        assert len(encode_for_field62(pad.capture()).jbig) <= 999
    assert strokes_pad.capture().size[0] >= 200  # cell coordinates scaled to pixels
    strokes_pad.clear()
    assert strokes_pad.empty


def test_parse_strokes_accepts_canvas_json():
    assert parse_strokes([[[1, 2], [3, 4]], [{"x": 5, "y": 6}], []]) == [[(1.0, 2.0), (3.0, 4.0)], [(5.0, 6.0)]]
    for bad in ("xy", [["ab"]], [[[1, 2, 3]]], 5):
        with pytest.raises(ValueError):
            parse_strokes(bad)


# --------------------------------------------------------------------------- receipt TLV

WHEN = datetime(2024, 5, 6, 7, 8, 9)


def test_receipt_tlv_exact_bytes():
    data = receipt_tlv("演示便利店", "消费", "01", WHEN)
    assert data.hex().upper() == (
        "FF00" "0A" "D1DDCABEB1E3C0FBB5EA"  # 演示便利店, GBK
        "FF01" "04" "CFFBB7D1"  # 消费, GBK
        "FF02" "01" "01"  # operator 01, BCD
        "FF06" "07" "20240506070809"  # YYYYMMDDhhmmss, BCD
        "FF0A" "03" "313536"  # 156, ASCII
        "FF70" "01" "02"
    )


def test_receipt_tlv_round_trip():
    data = receipt_tlv("Demo Mart 演示便利店", "消费撤销", "99", WHEN, currency="840")
    assert parse_receipt_tlv(data) == {
        "merchant_name": "Demo Mart 演示便利店",
        "txn_type_name": "消费撤销",
        "operator": "99",
        "when": WHEN,
        "currency": "840",
        "ff70": "02",
        "other": {},
    }


def test_receipt_tlv_long_name_and_unknown_tags():
    name = "很长的商户名称" * 12  # > 127 GBK bytes: BER long-form length
    data = receipt_tlv(name, "退货", "1", WHEN)
    extra = bytes.fromhex("FF2208A000000333010101")
    parsed = parse_receipt_tlv(data + extra)
    assert parsed["merchant_name"] == name
    assert parsed["operator"] == "01"
    assert parsed["other"] == {"FF22": "A000000333010101"}


def test_receipt_tlv_validation():
    with pytest.raises(ValueError):
        receipt_tlv("m", "t", "0a", WHEN)
    with pytest.raises(ValueError):
        receipt_tlv("m", "t", "01", WHEN, currency="CNY")
    with pytest.raises(CodecError):
        parse_receipt_tlv(b"\xff\x00\x05ab")
    assert parse_receipt_tlv(bytes.fromhex("FF060799999999999999"))["when"] is None


def test_terminal_core_sends_the_same_receipt_tlv():
    """The terminal core builds field 55 itself; it must stay byte-identical to this module's."""
    core = pytest.importorskip("posgate.terminal.operations.signature")
    mine = receipt_tlv("演示便利店", "消费", "01", WHEN)
    assert core.receipt_tlv("演示便利店", "消费", "01", "20240506070809") == mine
