"""The codec's one error type.

Every failure to encode or decode names *where* (a field path such as ``55.9F26`` and a byte
offset into the body) and *what was expected*, and never carries the offending value: a codec
error ends up in logs, and logs must not hold card data.
"""

from __future__ import annotations


class CodecError(ValueError):
    """A message could not be encoded or decoded.

    ``field`` is the field path (``"2"``, ``"60.2"``, ``"55.9F26"``, ``"bitmap"``, ``"mti"``),
    ``offset`` the byte offset in the message body where the problem starts (None when encoding),
    ``expected`` a human description of what should have been there.
    """

    def __init__(self, field: str, expected: str, offset: int | None = None) -> None:
        self.field = field
        self.offset = offset
        self.expected = expected
        where = f"field {field}" + (f" at byte {offset}" if offset is not None else "")
        super().__init__(f"{where}: expected {expected}")
