"""Read the card from the request: PAN from field 2 or track 2 (35), tracks decrypted with
the TDK when 53.3 = ``1`` (6.3); expiry from 14 or the track; Luhn → ``14``.

Must never: store or trace a track, a PAN or an expiry date — only ``pan_hash`` and
``pan_masked`` leave the request (the Context holds the clear values until it is dropped).
"""

from __future__ import annotations

from posgate.crypto import CryptoError, cipher_for, decrypt_track, luhn_valid
from posgate.domain.masking import mask_pan
from posgate.host.context import Context
from posgate.host.pipeline import Participant


class ReadCard(Participant):
    def prepare(self, ctx: Context) -> str:
        msg, t = ctx.msg, ctx.terminal
        assert msg is not None and t is not None
        pan = msg.text(2) or None
        expiry = msg.text(14) or None
        track = msg.text(35)
        if track:
            if msg.text(53)[2:3] == "1":
                if t.tdk is None:
                    return ctx.decline(self.name, "30", "encrypted track but no TDK (sign on with 004 or 006)")
                try:
                    track = decrypt_track(t.tdk, track, cipher=cipher_for(t.algorithm))
                except CryptoError:
                    return ctx.decline(self.name, "30", "track 2 does not decrypt")
            track_pan, sep, rest = track.partition("=")
            if pan is None:
                pan = track_pan
            elif pan != track_pan:
                return ctx.decline(self.name, "30", "field 2 and track 2 disagree")
            if expiry is None and sep and len(rest) >= 4:
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
