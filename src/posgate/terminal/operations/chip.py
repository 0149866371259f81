"""The chip card's second half of an online transaction (issue 14, docs/decisions.md C1).

After the issuer approved, the card checks the issuer's ARPC (field 55 tag 91 = ARPC ‖ ARC,
ARPC method 1 under the session key of the ATC it used) and, if it is right, answers the
second GENERATE AC with a transaction certificate (TC, 9F27 = ``40``) over ARC ‖ its CDOL1
data. A missing or wrong ARPC, or an ARC that is not an approval, makes the card decline
(AAC): the issuer's approval must then be reversed (the caller keeps the reversal record).

Sans-IO: keys come in the :class:`~posgate.terminal.operations.base.Card` of the flow.
"""

from __future__ import annotations

import hmac

from posgate.crypto import CryptoError
from posgate.crypto.emv import arpc_method1, cdol1_data, derive_session_key, generate_ac
from posgate.iso8583 import TLV, Message
from posgate.terminal.operations.base import Card

TC_CID = "40"


def applies(card: Card | None, request: Message) -> bool:
    """The card is one we hold keys for and the request carried its ARQC."""
    icc = request.get(55)
    return card is not None and card.chip_key is not None and isinstance(icc, TLV) and "9F26" in icc


def second_generate_ac(card: Card, request: Message, reply: Message) -> TLV | None:
    """Field 55 to keep for the batch upload (9F26 = TC, 9F27 = 40, 8A = ARC), or None when the
    card declines the issuer's answer."""
    icc, answer = request.get(55), reply.get(55)
    if card.chip_key is None or not isinstance(icc, TLV) or not isinstance(answer, TLV):
        return None
    tags = {t: v for t, v in icc.items if isinstance(v, bytes)}
    auth = answer.get("91")
    arqc, atc = tags.get("9F26"), tags.get("9F36")
    if not isinstance(auth, bytes) or len(auth) != 10 or arqc is None or atc is None:
        return None
    arpc, arc = auth[:8], auth[8:]
    try:
        sk = derive_session_key(card.chip_key, int.from_bytes(atc, "big"))
        if not hmac.compare_digest(arpc_method1(sk, arqc, arc), arpc) or arc != b"00":
            return None
        tc = generate_ac(sk, arc + cdol1_data(tags))
    except CryptoError:
        return None
    items = [(t, tc if t == "9F26" else bytes.fromhex(TC_CID) if t == "9F27" else v) for t, v in icc.items]
    return TLV([*items, ("8A", arc)])
