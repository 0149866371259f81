"""Read the card from the request: PAN from field 2 or track 2 (35), tracks decrypted with
the TDK when 53.3 = ``1`` (6.3); expiry from 14 or the track; Luhn → ``14``.

Must never: store or trace a track, a PAN or an expiry date — only ``pan_hash`` and
``pan_masked`` leave the request (the Context holds the clear values until it is dropped).
"""

from __future__ import annotations

from posgate.crypto import CryptoError, cipher_for, decrypt_track, luhn_valid
from posgate.dialect.qr import QrError, code_from_59, is_qr_entry
from posgate.domain.masking import mask_pan, split_track
from posgate.host.context import Context
from posgate.host.pipeline import Participant


class ReadCard(Participant):
    def prepare(self, ctx: Context) -> str:
        msg, t = ctx.msg, ctx.terminal
        assert msg is not None and t is not None
        if is_qr_entry(msg.text(22)) and 59 in msg:
            # Scan-to-pay (docs/decisions.md Q1): the payment code in 59 stands for the card. It
            # is card data like a PAN (hashed, masked, encrypted at rest) but has no Luhn digit.
            if 2 in msg or 35 in msg:
                return ctx.decline(self.name, "30", "a payment code and a card in one request")
            try:
                code = code_from_59(msg.text(59))
            except QrError as exc:
                return ctx.decline(self.name, "30", str(exc).split(" / ")[-1])
            ctx.pan, ctx.expiry = code, None
            ctx.pan_hash = ctx.store.pan_hash(code)
            ctx.pan_masked = mask_pan(code)
            return ctx.prepared(self.name, "payment code " + ctx.pan_masked)
        pan = msg.text(2) or None
        expiry = msg.text(14) or None
        track = msg.text(35)
        if track:
            if msg.text(53)[2:3] == "1":
                if t.tdk is None:
                    return ctx.decline(self.name, "30", "encrypted track but no TDK (sign on with 004 or 006)")
                try:
                    # The codec writes nibble D as '=': say so, never let the ciphertext decide
                    # (with an even PAN length the separator itself is encrypted).
                    track = decrypt_track(t.tdk, track, separator="=", cipher=cipher_for(t.algorithm))
                except CryptoError:
                    return ctx.decline(self.name, "30", "track 2 does not decrypt")
            track_pan, rest = split_track(track)
            if pan is None:
                pan = track_pan
            elif pan != track_pan:
                return ctx.decline(self.name, "30", "field 2 and track 2 disagree")
            if expiry is None and rest is not None and len(rest) >= 4:
                expiry = rest[:4]
        if pan is None:
            return ctx.prepared(self.name, "no card in the request")
        if not (12 <= len(pan) <= 19) or not luhn_valid(pan):
            return ctx.decline(self.name, "14", "PAN fails the Luhn check")
        ctx.pan = pan
        ctx.expiry = expiry
        ctx.pan_hash = ctx.store.pan_hash(pan)
        ctx.pan_masked = mask_pan(pan)
        return ctx.prepared(self.name, ctx.pan_masked)
