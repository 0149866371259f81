"""PIN (6.1): translate field 52 from the terminal's PIK to the issuer's zone key; the clear
block is checked to be a format 0 block for this PAN on the way, so a block made with other
keys is caught here: ``99`` (PIN format error, the terminal signs on again).

An SM4 (国密) terminal's PIN block is 16 bytes (format 0 widened, SM4 under the PIK) and does
not fit field 52 (b64): it travels in field 62 as ``SM016`` + the 16 bytes, field 52 holds 8
zero bytes (docs/dialect.md 4.4, docs/decisions.md N3). It is re-blocked to a DES format 0
block under the zone key on the way (an HSM's translate with format conversion).

Must never: keep the PIN block beyond the request, trace it, or see the PIN itself.
"""

from __future__ import annotations

from posgate.crypto import SM4, CryptoError, translate_pin_block
from posgate.dialect.fields import SM4_PIN_PREFIX
from posgate.host.context import Context
from posgate.host.pipeline import Participant


class TranslatePin(Participant):
    def prepare(self, ctx: Context) -> str:
        msg, t = ctx.msg, ctx.terminal
        assert msg is not None and t is not None
        block = msg.data(52)
        if block is None:
            return ctx.prepared(self.name, "no PIN")
        if t.pik is None or ctx.pan is None:
            return ctx.decline(self.name, "99", "PIN without a PIK or a PAN")
        with_pan = msg.text(53)[:1] != "1"  # 53.1 = 1: format without PAN (reservation, mobile chip)
        if t.algorithm == "sm4":
            f62 = msg.data(62) or b""
            if not (f62.startswith(SM4_PIN_PREFIX) and len(f62) == len(SM4_PIN_PREFIX) + 16) or not with_pan:
                return ctx.decline(self.name, "99", "no SM4 PIN block (62 = SM016 + 16 bytes, format 0)")
            try:
                ctx.pin_block = translate_pin_block(
                    t.pik, ctx.issuer.zone_key, f62[len(SM4_PIN_PREFIX) :], pan=ctx.pan, src_cipher=SM4
                )
            except CryptoError:
                return ctx.decline(self.name, "99", "SM4 PIN block malformed")
            return ctx.prepared(self.name, "SM4 block re-blocked to the issuer zone key")
        try:
            ctx.pin_block = translate_pin_block(t.pik, ctx.issuer.zone_key, block, pan=ctx.pan if with_pan else None)
        except CryptoError:
            return ctx.decline(self.name, "99", "PIN block malformed")
        return ctx.prepared(self.name, "translated to the issuer zone key")
