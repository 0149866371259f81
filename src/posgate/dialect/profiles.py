"""Dialect profiles: the CUP POS baseline and the named variants terminals in the field speak.

An acquirer cannot choose its terminals' firmware, so the host meets them: each terminal is
assigned a profile (``terminals.dialect``), and a profile is a small data object —

* ``fields``: overrides of field specs of the baseline table (``posgate.dialect.cup.FIELDS``),
  compiled once into the profile's own :class:`~posgate.iso8583.Codec` (``profile.codec``);
* ``mac``: the MAC algorithm (``cup`` ECB XOR-block, ``cup-lower`` the same in lower-case hex,
  ``x9.9`` single-DES CBC, ``x9.19`` retail MAC), or None for the baseline, which keeps the per-terminal ``mac_algorithm`` option;
* ``pin_format``: the ISO 9564 format of field 52 (0, 1 or 3);
* ``f60_private``: lengths of the digit tails after 60.3 this variant sends beyond the
  baseline's 60.4–60.7 shapes, and ``f60_tail``, the tail its terminals send;
* ``aliases``: the variant's codes in fields 3 and 25 mapped to the baseline's (bill payment:
  3 = ``190000`` is a sale, 25 = ``81`` a normal presentment), used to identify the operation;
  the reply echoes the codes as the terminal sent them.

No participant branches on a profile's name: the host decodes, MACs, translates PINs and
identifies operations through these values. See docs/dialect-profiles.md for the evidence.

Overrides are restricted to fields after 41 (checked when a profile is built) so that the
fields up to the terminal id read the same in every profile: the host can then always find
the TID with the baseline decoder before it knows the terminal's profile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from posgate.crypto import cup_ecb_mac, x9_9_mac, x9_19_mac
from posgate.dialect.cup import CODEC, FIELDS
from posgate.iso8583 import Codec, FieldSpec, Kind, Message
from posgate.iso8583.spec import lllvar

BASELINE = "cup"
MAC_ALGORITHMS = ("cup", "cup-lower", "x9.9", "x9.19")
PIN_FORMATS = (0, 1, 3)
# The per-terminal mac_algorithm column's values, as profile MAC names.
_TERMINAL_MAC = {"cup": "cup", "x919": "x9.19"}


@dataclass(frozen=True, eq=False)
class Profile:
    name: str
    zh: str
    en: str
    fields: Mapping[int, FieldSpec] = field(default_factory=dict)
    mac: str | None = None
    pin_format: int = 0
    f60_private: frozenset[int] = frozenset()
    f60_tail: str = ""
    aliases: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    codec: Codec = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for number, spec in self.fields.items():
            if number <= 41 or spec.number != number:
                raise ValueError(f"profile {self.name}: field {number} cannot be overridden (only 42..63)")
        if self.mac is not None and self.mac not in MAC_ALGORITHMS:
            raise ValueError(f"profile {self.name}: MAC {self.mac!r} is not one of {MAC_ALGORITHMS}")
        if self.pin_format not in PIN_FORMATS:
            raise ValueError(f"profile {self.name}: PIN format {self.pin_format} is not one of {PIN_FORMATS}")
        if self.f60_tail and (not self.f60_tail.isdigit() or len(self.f60_tail) not in self.f60_private):
            raise ValueError(f"profile {self.name}: 60 tail must be digits of a declared private length")
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        if set(self.aliases) - {3, 25}:
            raise ValueError(f"profile {self.name}: aliases are for fields 3 and 25 only")
        object.__setattr__(
            self, "aliases", MappingProxyType({n: MappingProxyType(dict(m)) for n, m in self.aliases.items()})
        )
        # The baseline shares the one compiled codec (and its caches of generated functions).
        codec = CODEC if not self.fields else Codec({**FIELDS, **self.fields})
        object.__setattr__(self, "codec", codec)

    @property
    def baseline(self) -> bool:
        return self.name == BASELINE

    def mac_name(self, terminal_option: str = "cup") -> str:
        """The MAC algorithm in force: the profile's, or for the baseline the terminal's option."""
        return self.mac or _TERMINAL_MAC.get(terminal_option, "cup")

    def mac_function(self, mak: bytes, terminal_option: str = "cup") -> Callable[[bytes], bytes]:
        """``mab -> field 64`` under ``mak`` with this profile's algorithm (8 bytes always:
        8 ASCII hex characters for ``cup``, 8 binary bytes for the CBC MACs)."""
        return mac_function(self.mac_name(terminal_option), mak)

    def outbound(self, msg: Message) -> Message:
        """A request as this variant's terminals send it (the terminal emulator's side): the
        baseline codes of fields 3 and 25 written as the variant's, its own 60 tail. Idempotent."""
        if not self.aliases and not self.f60_tail:
            return msg
        fields = dict(msg)
        for number, table in self.aliases.items():
            if number in fields:
                back = {v: k for k, v in table.items()}
                fields[number] = back.get(msg.text(number), fields[number])
        if self.f60_tail and 60 in fields and len(msg.text(60)) >= 11:
            # The variant's own digits after 60.3 stand where the baseline's 60.4-60.7 would.
            fields[60] = msg.text(60)[:11] + self.f60_tail
        return Message(msg.mti, fields)

    def __repr__(self) -> str:
        return f"Profile({self.name})"


def mac_function(algorithm: str, mak: bytes) -> Callable[[bytes], bytes]:
    if algorithm == "x9.19":
        key = mak if len(mak) == 16 else mak + mak  # a single-length MAK: X9.19 degenerates to X9.9
        return lambda mab: x9_19_mac(key, mab)
    if algorithm == "x9.9":
        # X9.9 is single DES: a double-length MAK uses its left half (as the public client does
        # with its single-length MAK; a terminal with a 16-byte MAK should use x9.19).
        key8 = mak[:8]
        return lambda mab: x9_9_mac(key8, mab)
    if algorithm == "cup-lower":
        return lambda mab: cup_ecb_mac(mak, mab, lower=True)
    return lambda mab: cup_ecb_mac(mak, mab)


def _ascii48() -> FieldSpec:
    base = FIELDS[48]
    return lllvar(48, Kind.ANS, base.max_len, name=base.name + " (ASCII)", zh=base.zh)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            BASELINE, "银联POS基线", "CUP POS baseline",
            evidence=("the CUP POS terminal specification as implemented by posgate (docs/protocol.md)",),
        ),
        Profile(
            "x919", "银联POS + X9.19 MAC", "CUP POS with the ANSI X9.19 retail MAC", mac="x9.19",
            evidence=("CUP 5.4 per-terminal option (already a terminal column: mac_algorithm = x919)",),
        ),
        Profile(
            "gz-bill", "贵州银联缴费", "Guizhou UnionPay bill-payment client",
            fields={48: _ascii48()}, mac="x9.9", pin_format=0,
            f60_private=frozenset({5}), f60_tail="00060",
            aliases={3: {"190000": "000000", "280000": "200000"}, 25: {"81": "00"}},
            evidence=(
                "a public Python 银联支付接口测试程序 (py8583 + pydes) talking to a 贵州银联 host: "
                "calc_mac_cbc = single-DES CBC over MTI..63 zero-padded, 8 bytes; field 48 "
                "'KP77SG0C…#' (letters: ASCII); 60 = 22 yymmdd 000 00060 (5 digits after 60.3); "
                "缴费 3 = 190000, 缴费撤销 3 = 280000, 25 = 81",
            ),
        ),
        Profile(
            "easy8583", "Easy8583 小写MAC", "Easy8583 client (CUP MAC in lower-case hex)", mac="cup-lower",
            evidence=(
                "yangyongzhen/Easy8583Ans (Java, commit 62fbbb4) Easy8583Ans.upGetMac: the CUP ECB MAC "
                "with the XOR block and the result formatted '%02x' (lower-case ASCII hex); its sign-on, "
                "QR sale and settlement run against posgate (docs/field-dialects.md, Real clients run)",
            ),
        ),
        Profile(
            "pin1", "ISO 9564 格式1 PIN", "PIN block ISO 9564 format 1", pin_format=1,
            evidence=("ISO 9564-1 format 1 (no PAN): terminals without the PAN at PIN entry",),
        ),
        Profile(
            "pin3", "ISO 9564 格式3 PIN", "PIN block ISO 9564 format 3", pin_format=3,
            evidence=("ISO 9564-1 format 3 (random A-F fill): PCI PTS-era PIN pads",),
        ),
    )
}  # fmt: skip


def get(name: str | None) -> Profile:
    """The profile called ``name`` (None or empty: the baseline). Raises KeyError if unknown."""
    if not name:
        return PROFILES[BASELINE]
    return PROFILES[name]


def names() -> tuple[str, ...]:
    return tuple(PROFILES)
