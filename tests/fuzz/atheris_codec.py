"""Coverage-guided fuzzing (atheris / libFuzzer) of the codec and the framing.

    .venv/bin/python tests/fuzz/atheris_codec.py                 # 200 000 inputs, then stops
    .venv/bin/python tests/fuzz/atheris_codec.py -runs=5000000   # longer (any libFuzzer flag works)
    .venv/bin/python tests/fuzz/atheris_codec.py -max_total_time=600 corpus/

Properties: on any bytes, ``CODEC.decode`` returns a message or raises ``CodecError`` (nothing
else); a decoded message re-encodes and decodes to the same message; ``FrameReader`` fed the
bytes in two pieces returns frames or raises ``FramingError``, and the frames it returns
re-encode to a prefix of the input. A crash prints the input and exits non-zero.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from posgate.dialect.cup import CODEC
    from posgate.framing import FrameReader, FramingError, encode_frame
    from posgate.iso8583 import CodecError


def test_one_input(data: bytes) -> None:
    try:
        msg = CODEC.decode(data)
    except CodecError:
        pass
    else:
        try:
            again = CODEC.decode(CODEC.encode(msg))
        except CodecError as e:  # a message we decoded must encode to something we can decode
            raise AssertionError(f"re-encoding a decoded message failed: {e}") from e
        assert again == msg, "decode(encode(decode(x))) != decode(x)"

    if len(data) < 1:
        return
    cut = data[0] % len(data)
    reader = FrameReader()
    try:
        frames = reader.feed(data[1 : 1 + cut]) + reader.feed(data[1 + cut :])
    except FramingError:
        return
    stream = b"".join(encode_frame(f.tpdu, f.header, f.body, max_size=1 << 16) for f in frames)
    assert data[1:].startswith(stream), "frames do not re-encode to the bytes they came from"


def main(argv: list[str]) -> None:
    if not any(a.startswith(("-runs=", "-max_total_time=")) for a in argv[1:]):
        argv = [*argv, "-runs=200000"]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
