"""Codec benchmark: decode a CUP 0200 sale + encode its 0210 reply, posgate vs pyiso8583.

Run ``python -m posgate.bench.codec`` (``make bench-codec``). Both codecs run in the same
process, their repeats interleaved, so machine noise hits both alike; each side's figure is the
best of the repeats (timeit's advice: the minimum is the least disturbed run). The ratio is the
figure to quote — absolute times drift by up to 1.7x between runs on our shared machines
(docs/benchmarks.md).

The request is the real contactless sale of docs/dialect.md 11.1(d) (PAN, track 2, PIN block,
53, 55 TLV, 60, 64); the reply is a typical approved 0210 with fields 2, 3, 4, 11, 12, 13, 14,
15, 22, 25, 32, 37, 38, 39, 41, 42, 44, 49, 60, 63, 64. Each side does its full work:
posgate decodes to a :class:`Message` (field 55 parsed into a TLV) and encodes a prepared
``Message``; pyiso8583 decodes to its dict and encodes a prepared dict. Before timing, the
benchmark checks that both produce the same 0210 bytes and the same decoded 0200.

Output: one line per codec (µs per pair, pairs per second), then as the last line exactly
``posgate/pyiso8583 speed ratio: N.NN``. With ``--json``, a single JSON object instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
import warnings
from collections.abc import Callable

from posgate.bench.pyiso_spec import CUP_SPEC, from_pyiso, to_pyiso
from posgate.dialect.cup import CODEC
from posgate.dialect.fields import Field44, Field63
from posgate.iso8583 import Message

# docs/dialect.md 11.1(d): a real contactless sale, body from the MTI.
SALE_0200 = bytes.fromhex(
    "0200703C06C020C09A11196217857600008050804000000000000000000100010516124302092308071000010012"
    "376217857600008050804D2308220100008230003932333336373837383437313030303533393930303032313536"
    "7D6A7408DFE2E9E5260000000000000001459F26089C0A057796D091E39F2701809F1013070F0103A00000010A01"
    "0000005959BAF31C349F37042AE9F9B49F36020FCD950500000000009A031802099C01009F0206000000000001"
    "5F2A02015682027C009F1A0201569F03060000000000009F330390C8C09F34030000009F3501229F1E0831323334"
    "353637388408A0000003330101019F090200209F41040000000200122200000100064433374345464536"
)


def sale_reply() -> Message:
    """An approved 0210 for :data:`SALE_0200`."""
    return Message(
        "0210",
        {
            2: "6217857600008050804",
            3: "000000",
            4: "000000000001",
            11: "000105",
            12: "161245",
            13: "0209",
            14: "2308",
            15: "0209",
            22: "071",
            25: "00",
            32: "00094500",
            37: "180209161245",
            38: "A1B2C3",
            39: "00",
            41: "92336787",
            42: "847100053990002",
            44: Field44("03080000", "48020000").format(),
            49: "156",
            60: "220000010006",
            63: Field63("CUP", "Bank of Posgate", "China UnionPay", "posgate acquirer").format(),
            64: b"1A2B3C4D",
        },
    )


def posgate_pair(request: bytes, reply: Message) -> Callable[[], object]:
    decode, encode = CODEC.decode, CODEC.encode

    def pair() -> object:
        decode(request)
        return encode(reply)

    return pair


def pyiso_pair(request: bytes, reply: dict[str, str]) -> Callable[[], object]:
    import iso8583

    decode, encode, spec = iso8583.decode, iso8583.encode, CUP_SPEC

    def pair() -> object:
        decode(request, spec)
        return encode(reply, spec)

    return pair


def check_same_work(request: bytes, reply: Message) -> None:
    """Both codecs must agree on the request and on the reply bytes, or the race is void."""
    import iso8583

    ours = CODEC.decode(request)
    theirs, _ = iso8583.decode(request, CUP_SPEC)
    if from_pyiso(theirs) != ours:
        raise SystemExit("benchmark invalid: pyiso8583 and posgate decode the 0200 differently")
    out, _ = iso8583.encode(to_pyiso(reply), CUP_SPEC)
    if bytes(out) != CODEC.encode(reply):
        raise SystemExit("benchmark invalid: pyiso8583 and posgate encode the 0210 differently")


def _loops_for(fn: Callable[[], object], target: float) -> int:
    """How many calls of ``fn`` take about ``target`` seconds."""
    timer = timeit.Timer(fn)
    number, elapsed = timer.autorange()  # at least 0.2 s
    return max(1, int(number * target / elapsed))


def run(seconds: float = 6.0, repeats: int = 25) -> dict[str, float | int]:
    reply = sale_reply()
    check_same_work(SALE_0200, reply)
    sides = {"posgate": posgate_pair(SALE_0200, reply), "pyiso8583": pyiso_pair(SALE_0200, to_pyiso(reply))}
    per_repeat = max(seconds, 0.1) / (len(sides) * repeats)
    loops = {name: _loops_for(fn, per_repeat) for name, fn in sides.items()}
    best = {name: float("inf") for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():  # interleaved: noise hits both sides alike
            t = timeit.Timer(fn).timeit(loops[name]) / loops[name]
            best[name] = min(best[name], t)
    us = {name: t * 1e6 for name, t in best.items()}
    return {
        "request_bytes": len(SALE_0200),
        "reply_bytes": len(CODEC.encode(reply)),
        "repeats": repeats,
        "posgate_us_per_pair": round(us["posgate"], 2),
        "posgate_pairs_per_s": round(1e6 / us["posgate"]),
        "pyiso8583_us_per_pair": round(us["pyiso8583"], 2),
        "pyiso8583_pairs_per_s": round(1e6 / us["pyiso8583"]),
        "ratio": round(us["pyiso8583"] / us["posgate"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m posgate.bench.codec", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="total timing budget (default 6)")
    parser.add_argument("--repeats", type=int, default=25, help="interleaved repeats per side (default 25)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pyiso8583 may warn; not our concern here
        r = run(args.seconds, max(1, args.repeats))
    if args.json:
        print(json.dumps(r))
        return 0
    print(
        f"CUP 0200 decode ({r['request_bytes']} bytes) + 0210 encode ({r['reply_bytes']} bytes), "
        f"best of {r['repeats']} interleaved repeats, Python {sys.version.split()[0]}"
    )
    for name in ("posgate", "pyiso8583"):
        print(f"{name:<10} {r[f'{name}_us_per_pair']:8.2f} µs/pair {r[f'{name}_pairs_per_s']:>9,} pairs/s")
    print(f"posgate/pyiso8583 speed ratio: {r['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
