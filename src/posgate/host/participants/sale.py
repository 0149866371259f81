"""Sale (3.6): card → risk → PIN → issuer debit. The participants are the shared ones (card,
risk, pin, authorize); this word's route lives in :mod:`posgate.host.routes`. What is sale
specific is the check that the request is still worth authorising: a sale may only go to the
issuer once per STAN (duplicates.py) and within the terminal's open batch (fields.CheckBatch).
"""

from __future__ import annotations

from posgate.host.participants.authorize import AuthorizeWithIssuer


def authorize_sale() -> AuthorizeWithIssuer:
    return AuthorizeWithIssuer("debit")
