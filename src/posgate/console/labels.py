"""Every internal code the console shows, mapped to a translatable label: ONE place.

The database and the host speak in codes (``device_serial``, ``merchant_suspended``, ``lapse``,
``missing_on_host``, entry mode ``051``, batch result ``2``...). Pages never print a code: they
call ``label(domain, code)`` (a template global), which looks the English label up here and
translates it through the catalogue (``locale/*/LC_MESSAGES/messages.po``). The same code can
mean different things in different places (``daily`` is a sign-on cause and a backup kind;
``approved`` a transaction's status and a proposal's), hence the domains.

A code missing from this table is shown as it is, and the page crawls in
``tests/console/test_page_text.py`` fail on it: add it here (and its Chinese to the catalogue).
"""

from __future__ import annotations

from collections.abc import Callable

LABELS: dict[str, dict[str, str]] = {
    "payment_method": {"card": "Bank card", "qr": "QR payment", "unionpay": "UnionPay QR", "wechat": "WeChat Pay",
                       "alipay": "Alipay"},
    "role": {
        "acquirer_admin": "Acquirer administrator", "support": "Support desk",
        "merchant_admin": "Merchant administrator", "merchant_clerk": "Merchant clerk",
    },
    # Routing (issue 13, docs/upstream.md): a route's card kind and the built-in issuer as a target.
    "route_target": {"issuer": "Built-in issuer"},
    # upstream links (posgate.network.status) and their store-and-forward entries
    "link_state": {"signed_on": "Signed on", "connected": "Connected, signing on", "reconnecting": "Reconnecting",
                   "down": "Down"},
    "saf_kind": {"reversal": "Reversal", "advice": "Advice"},
    "link_error": {"timeout": "No answer in time", "refused": "Connection refused", "lost": "Connection lost",
                   "closed": "Closed by the network",
                   "sign_on_refused": "Sign-on refused", "key": "Zone PIN key does not check (wrong zone master key?)",
                   "other": "Connection failed"},
    "txn_status": {
        "approved": "Successful", "declined": "Declined", "reversed": "Reversed", "voided": "Voided",
        "refunded": "Refunded", "partially_refunded": "Partly refunded", "completed": "Completed",
        "annulled": "Annulled",
    },
    "source": {
        "terminal": "POS terminal", "makeup": "Make-up entry", "console": "Console", "batch_upload": "Batch upload",
        "clearing": "Daily clearing",
    },
    # daily clearing (posgate.clearing): a record's matching outcome, a difference's state, a resolution
    "clearing_outcome": {
        "matched": "Matched", "amount_mismatch": "Amounts differ", "response_mismatch": "Approved on one side only",
        "missing_ours": "Missing on our side", "missing_theirs": "Missing on the network's side",
        "duplicate": "Twice in the network's file", "no_effect": "Declined, nothing owed",
    },
    "clearing_status": {"open": "Open", "proposed": "Waiting for approval", "resolved": "Resolved"},
    "clearing_action": {"follow_network": "Follow the network's record (adjust our ledger)",
                        "keep_ours": "Keep our record (the network corrects its side)"},
    "proposal_status": {"pending": "Waiting for approval", "approved": "Approved by a second person", "rejected": "Rejected"},
    "refund_status": {"pending": "Waiting for approval", "rejected": "Rejected", "executed": "Refunded",
                      "failed": "Refund failed"},
    "makeup_kind": {
        "missing_sale": "Sale missing from the ledger", "wrong_amount": "Wrong amount", "annul": "Annul a record",
        "close_difference": "Close a difference",
    },
    "difference_kind": {
        "missing_on_host": "Only on the terminal", "missing_on_terminal": "Only on the host",
        "amount_mismatch": "Amounts differ",
    },
    "difference_status": {"open": "Open", "resolved": "Resolved"},
    "batch_status": {"balanced": "Balanced", "unbalanced": "Not balanced", "reconciled": "Reconciled after upload"},
    # field 48 result flags (spec 9.1): 0 is read as 1
    "batch_result": {"0": "Balanced", "1": "Balanced", "2": "Not balanced", "3": "Reconciliation error"},
    # the batch-upload end the terminal sent (60.3 of the last 0320)
    "upload_end": {"207": "Upload finished (balanced)", "202": "Upload finished (not balanced)"},
    "statement_status": {"open": "Business day not over", "scheduled": "Payment scheduled", "settled": "Paid",
                         "on_hold": "On hold"},
    "signon_kind": {"sign_on": "Sign-on", "sign_off": "Sign-off", "refused": "Sign-on refused",
                    "reinstated": "Merchant reinstated"},
    "signon_cause": {
        "daily": "First sign-on of the day", "make_up_temporary": "Sign-on again the same day",
        "make_up_formal": "Replacement device signed on", "remote": "Requested by the support desk",
        "mac_failures": "After repeated security check failures", "cutoff": "After the day's cut-off",
        "device_serial": "Device serial differs from the recorded one",
        "lapse": "Merchant suspended: no sign-on for too long", "merchant_suspended": "Merchant suspended",
        "terminal_suspended": "Terminal suspended", "reinstated": "Merchant reinstated", "manual": "Operator",
        "cli": "Command line",
    },
    "resign_reason": {"support": "Support desk", "mac_failures": "Repeated security check failures", "cutoff": "Day's cut-off",
                      "remote": "Support desk"},
    "backup_kind": {"scheduled": "Daily (scheduled)", "daily": "Daily (scheduled)", "manual": "Manual (console)",
                    "cli": "Manual (command line)"},
    # why a backup failed (posgate.console.backup.failure_cause): the page says this, the log the rest
    "backup_cause": {
        "disk_full": "The disk of the backup folder is full: free some space or move old backups away.",
        "no_permission": "The console is not allowed to write to the backup folder: check the folder's owner and permissions.",
        "folder_missing": "The backup folder cannot be used: it is missing, or a file has its name. Check the backup folder setting.",
        "tool_missing": "The PostgreSQL backup program (pg_dump) is not installed on the console's machine.",
        "dump_failed": "PostgreSQL did not let the backup read the database: check that the database is running and reachable.",
        "in_memory": "This database only exists in memory and cannot be backed up.",
        "unsupported": "This kind of database cannot be backed up by the console.",
        "database": "The database could not be read for the backup (it may be damaged or locked).",
        "timeout": "The backup took too long and was stopped.",
        "other": "An unexpected problem stopped the backup.",
    },
    "backup_status": {"ok": "Complete", "failed": "Failed", "pruned": "Deleted (past retention)"},
    "state": {"active": "Active", "suspended": "Suspended", "disabled": "Disabled"},
    # a terminal's dialect profile (posgate.dialect.profiles; tests check every profile has one)
    "dialect": {"cup": "CUP POS baseline", "x919": "CUP POS with the ANSI X9.19 retail MAC",
                "gz-bill": "Guizhou UnionPay bill-payment client", "pin1": "PIN block in ISO 9564 format 1",
                "pin3": "PIN block in ISO 9564 format 3", "easy8583": "Easy8583 client (MAC in lower-case hex)"},
    # field 22, first two digits (spec: 01 manual, 02 magstripe, 05 contact IC, 07 contactless, 96 mobile)
    "entry_mode": {"01": "Keyed", "02": "Swipe", "05": "Chip", "07": "Contactless", "91": "Contactless",
                   "96": "Mobile phone", "92": "No card present", "80": "Swipe (chip fallback)"},
    # a pipeline participant's vote, as the host records it in the step trace
    "vote": {"prepared": "Continue", "aborted": "Declined", "done": "Finished"},
    "object_type": {"card": "Test card", "setting": "Setting", "user": "User", "client": "Client address", "transaction": "Transaction", "terminal": "Terminal",
                    "merchant": "Merchant", "backup": "Backup", "difference": "Difference",
                    "makeup_entry": "Make-up entry", "refund_request": "Refund request", "route": "Route",
                    "stand_in_limit": "Stand-in limit",
                    "clearing_file": "Clearing file", "clearing_difference": "Clearing difference",
                    "aid": "IC application", "capk": "CA public key",
                    "bank_account": "Settlement account", "payout": "Payout", "payout_file": "Payout file",
                    "fee_rule": "Fee rule"},
    "audit_action": {
        "route.add": "Route added", "route.remove": "Route removed", "stand_in.set": "Stand-in limit set",
        "login.ok": "Logged in", "login.failed": "Failed login", "login.refused_locked": "Login refused (too many failures)",
        "login.refused_disabled": "Login refused (account disabled)", "logout": "Logged out",
        "user.created": "User created", "user.locked": "Account locked", "user.unlocked": "Account unlocked",
        "user.enabled": "User enabled", "user.disabled": "User disabled", "user.password_reset": "Password reset",
        "user.password_changed": "Password changed",
        "transaction.makeup_signature": "Make-up signature", "transaction.unsigned_overdue": "Slip unsigned too long",
        "transaction.refunded": "Refund executed", "transaction.annulled": "Record annulled",
        "makeup.proposed": "Correction proposed", "makeup.approved": "Correction approved",
        "makeup.rejected": "Correction rejected", "difference.resolved": "Difference resolved",
        "refund.requested": "Refund requested", "refund.approved": "Refund approved", "refund.rejected": "Refund rejected",
        "terminal.suspend": "Terminal suspended", "terminal.reinstate": "Terminal reinstated",
        "terminal.resign_requested": "Re-sign-on requested", "terminal.resign": "Re-sign-on requested",
        "terminal.device_approved": "Replacement device approved", "terminal.approve_device": "Replacement device approved",
        "terminal.params": "Parameters changed", "terminal.add": "Terminal added",
        "terminal.set_profile": "Dialect profile changed",
        "merchant.suspend": "Merchant suspended", "merchant.reinstate": "Merchant reinstated", "merchant.add": "Merchant added",
        "backup.created": "Backup written", "backup.downloaded": "Backup downloaded", "backup.pruned": "Backup deleted",
        "duplicate_stan": "Duplicate voucher number", "card.add": "Test card added", "setting.set": "Setting changed",
        "clearing.imported": "Clearing file imported", "clearing.proposed": "Clearing resolution proposed",
        "clearing.resolved": "Clearing difference resolved", "clearing.rejected": "Clearing resolution rejected",
        "ic.aid.add": "IC parameters added", "ic.aid.replace": "IC parameters changed",
        "ic.aid.remove": "IC parameters removed", "ic.capk.add": "CA public key added",
        "ic.capk.replace": "CA public key replaced", "ic.capk.remove": "CA public key removed",
        "bank_account.proposed": "Settlement account change proposed",
        "bank_account.approved": "Settlement account change approved",
        "bank_account.rejected": "Settlement account change rejected",
        "bank_account.provisioned": "Settlement account provisioned",
        "fee_rule.set": "Fee rule set", "fee_rule.removed": "Fee rule removed",
        "payout.built": "Payout built", "payout.held": "Payout held", "payout.exported": "Payout sent to the bank",
        "payout.paid": "Payout paid", "payout.failed": "Payout refused by the bank", "payout.retried": "Payout to be sent again",
        "payout.released": "Payout released", "payout_file.written": "Payout file written",
    },
    # issue 11: payouts (posgate.store.payouts)
    "payout_status": {"pending": "Waiting for the payout file", "held": "Held", "exported": "Sent to the bank",
                      "paid": "Paid into the account", "failed": "Refused by the bank"},
    "payout_kind": {"t1": "Next day (T+1)", "d0": "Same day (D0)"},
    "payout_reason": {"no_bank_account": "No approved settlement account", "merchant_suspended": "Merchant suspended"},
    "card_kind": {"debit": "Debit card", "credit": "Credit card", "foreign": "Foreign card", "qr": "QR payment",
                  "d0": "Same-day payout"},
    "fee_source": {"merchant": "This merchant's rule", "acquirer": "The acquirer's default",
                   "merchant_rate": "The merchant's own rate", "default": "Standard rate"},
    "account_status": {"pending": "Waiting for approval", "active": "In use", "replaced": "Replaced",
                       "rejected": "Rejected"},
}  # fmt: skip

# Roles that see how a transaction went through the host (MTI, processing code, STAN, the
# pipeline's steps, raw entry-mode and response codes). Merchants see business words.
TECHNICAL_ROLES = frozenset({"acquirer_admin", "support"})


def english(domain: str, code: object) -> str | None:
    """The English label (a msgid) of ``code``, or None when the table does not know it."""
    if code is None:
        return None
    table = LABELS[domain]
    key = str(code)
    if domain == "entry_mode":
        key = key[:2]
    elif domain == "vote":
        key = key.lower()
    return table.get(key)


def labeller(gettext: Callable[[str], str]) -> Callable[[str, object], str]:
    """``label(domain, code)`` for one language: translated label, ``""`` for None, else the code."""

    def label(domain: str, code: object) -> str:
        if code is None or code == "":
            return ""
        msgid = english(domain, code)
        return gettext(msgid) if msgid else str(code)

    return label


def msgids() -> set[str]:
    return {v for table in LABELS.values() for v in table.values()}


def plain(value: object) -> str:
    """A stored JSON value as text for a page: ``key: value`` pairs, never a Python or JSON repr."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value)
    return str(value)
