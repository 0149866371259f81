"""The host's routes: the whole pipeline, declared as data, in one place.

Read it top to bottom as "what happens to a request". ``PIPELINE`` is what every request goes
through; ``Switch`` splices in the group of ``GROUPS`` for the request's operation (the names
of :data:`posgate.dialect.operations.OPERATIONS`). ``BuildReply`` and ``Record`` run even
after a decline. Order matters and is deliberate:

* ``CheckDuplicate`` before the sign-on and MAC gates: a byte-identical retransmission is
  answered from the store whatever happened since (D8);
* ``RequireSignedOnToday`` before ``CheckMac``: without today's sign-on there is no MAK to
  check against (D5);
* inside a group, checks that decline without side effects come first, the issuer last, and
  the original's new status only after the issuer approved.

Participants are stateless singletons: one instance serves every request.
"""

from __future__ import annotations

from collections.abc import Sequence

from posgate.host.participants.authorize import AuthorizeWithIssuer
from posgate.host.participants.balance import ReturnBalance
from posgate.host.participants.batch_upload import ReconcileUpload
from posgate.host.participants.card import ReadCard
from posgate.host.participants.decode import Decode
from posgate.host.participants.duplicates import CheckDuplicate
from posgate.host.participants.echo import Echo
from posgate.host.participants.fields import CheckBatch, CheckFields
from posgate.host.participants.ic_params import (
    CheckNoCvmLimit,
    DownloadIcParams,
    EndIcDownload,
    QueryIcParams,
)
from posgate.host.participants.identify import CheckMerchantActive, IdentifyTerminal
from posgate.host.participants.mac import CheckMac
from posgate.host.participants.offline import FindAdjustOriginal, KeepTerminalAuthCode
from posgate.host.participants.originals import MarkOriginal
from posgate.host.participants.parameters import DownloadParameters, UploadStatus
from posgate.host.participants.pin import TranslatePin
from posgate.host.participants.preauth import FindPreauth
from posgate.host.participants.qr import ConfirmQrOriginal, FindQrOriginal
from posgate.host.participants.record import Record
from posgate.host.participants.refund import FindRefundOriginal, MarkRefunded
from posgate.host.participants.reply import BuildReply
from posgate.host.participants.reversal import ReverseOriginal
from posgate.host.participants.risk import CheckRisk
from posgate.host.participants.sale import authorize_sale
from posgate.host.participants.script_advice import RecordScriptAdvice
from posgate.host.participants.settlement import Settle
from posgate.host.participants.sign_off import SignOff
from posgate.host.participants.sign_on import CheckDeviceSerial, IssueWorkingKeys, RequireSignedOnToday
from posgate.host.participants.signature import StoreSignature
from posgate.host.participants.void import FindVoidOriginal
from posgate.host.pipeline import Participant, Switch

check_fields, check_batch, read_card, pin = CheckFields(), CheckBatch(), ReadCard(), TranslatePin()

# Offline advices, as 0220s and as re-sent in a batch upload (D11, where the batch is closed).
ADVICES: dict[str, list[Participant]] = {
    "offline_settlement": [check_fields, read_card, AuthorizeWithIssuer("force_debit"), KeepTerminalAuthCode()],
    "settlement_adjust": [check_fields, read_card, FindAdjustOriginal(), AuthorizeWithIssuer("force_debit"),
                          KeepTerminalAuthCode(), MarkOriginal("adjusted")],
    "tip_adjust": [check_fields, read_card, FindAdjustOriginal(), AuthorizeWithIssuer("force_debit"), KeepTerminalAuthCode(),
                   MarkOriginal("adjusted")],
    "completion_advice": [check_fields, read_card, FindPreauth("completion"), AuthorizeWithIssuer("capture_hold"),
                          KeepTerminalAuthCode(), MarkOriginal("completed")],
}  # fmt: skip

GROUPS: dict[str, Sequence[Participant]] = {
    # network management
    "sign_on": [check_fields, CheckDeviceSerial(), IssueWorkingKeys()],
    "sign_off": [check_fields, SignOff()],
    "echo": [check_fields, Echo()],
    "parameter_download": [check_fields, DownloadParameters()],
    "status_upload": [check_fields, UploadStatus()],
    # IC public keys and IC parameters (docs/dialect.md 3.12)
    **{f"{kind}_{step}": [check_fields, participant(kind)] for kind in ("capk", "aid")
       for step, participant in (("query", QueryIcParams), ("download", DownloadIcParams), ("end", EndIcDownload))},
    # financial
    "balance": [check_fields, check_batch, read_card, pin, AuthorizeWithIssuer("balance"), ReturnBalance()],
    "sale": [check_fields, check_batch, read_card, CheckNoCvmLimit(), CheckRisk(), pin, authorize_sale()],
    "void": [check_fields, check_batch, read_card, FindVoidOriginal(), pin, AuthorizeWithIssuer("credit"),
             MarkOriginal("voided")],
    "refund": [check_fields, check_batch, read_card, FindRefundOriginal(), AuthorizeWithIssuer("credit"),
               MarkRefunded()],
    "preauth": [check_fields, check_batch, read_card, CheckRisk(), pin, AuthorizeWithIssuer("hold")],
    "preauth_void": [check_fields, check_batch, read_card, FindPreauth("void"), pin,
                     AuthorizeWithIssuer("release_hold"), MarkOriginal("voided")],
    "completion": [check_fields, check_batch, read_card, FindPreauth("completion"), pin,
                   AuthorizeWithIssuer("capture_hold"), MarkOriginal("completed")],
    "completion_void": [check_fields, check_batch, read_card, FindVoidOriginal(("completion",)), pin,
                        AuthorizeWithIssuer("credit"), MarkOriginal("voided")],
    **{name: [check_fields, check_batch, *group[1:]] for name, group in ADVICES.items()},
    # scan-to-pay: the query of a QR sale answered 09 (docs/decisions.md Q2)
    "qr_query": [check_fields, check_batch, read_card, FindQrOriginal(), AuthorizeWithIssuer("confirm_debit"),
                 ConfirmQrOriginal()],
    "reversal": [check_fields, ReverseOriginal()],
    "script_advice": [check_fields, RecordScriptAdvice()],
    "signature": [check_fields, StoreSignature()],
    # end of day
    "settlement": [check_fields, Settle()],
    "batch_upload": [check_fields, ReconcileUpload(ADVICES)],
}  # fmt: skip

PIPELINE: list[Participant | Switch] = [
    Decode(),
    IdentifyTerminal(),
    CheckDuplicate(),
    CheckMerchantActive(),
    RequireSignedOnToday(),
    CheckMac(),
    Switch(GROUPS),
    BuildReply(),
    Record(),
]
