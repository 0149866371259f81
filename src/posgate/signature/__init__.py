"""Electronic signatures (电子签名): the picture in field 62 and the receipt elements in field 55.

Used by the terminal (capture → :func:`encode_for_field62` → upload with :func:`receipt_tlv`),
by the host (store the JBIG, check it decodes) and by the console (show it with
:func:`jbig_to_png`; take a make-up signature from a canvas with :func:`parse_strokes`,
:func:`render_strokes` and :func:`encode_for_field62`). See :mod:`posgate.signature.jbig` for
the image pipeline, :mod:`posgate.signature.elements` for the TLV and
:mod:`posgate.signature.pads` for capture devices.
"""

from posgate.signature.elements import parse_receipt_tlv, receipt_tlv
from posgate.signature.jbig import (
    DEFAULT_MAX_BYTES,
    BlankSignatureError,
    SignatureError,
    SignatureImage,
    SignatureTooLargeError,
    decode_jbig,
    encode_for_field62,
    encode_jbig,
    image_to_png,
    jbig_to_png,
    png_to_jbig,
    to_bilevel,
)
from posgate.signature.pads import (
    ImageFilePad,
    SignaturePad,
    StrokesPad,
    parse_strokes,
    render_strokes,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "BlankSignatureError",
    "ImageFilePad",
    "SignatureError",
    "SignatureImage",
    "SignaturePad",
    "SignatureTooLargeError",
    "StrokesPad",
    "decode_jbig",
    "encode_for_field62",
    "encode_jbig",
    "image_to_png",
    "jbig_to_png",
    "parse_receipt_tlv",
    "parse_strokes",
    "png_to_jbig",
    "receipt_tlv",
    "render_strokes",
    "to_bilevel",
]
