"""``posgate terminal ...``: a scriptable CUP POS terminal on the command line.

Every command opens the terminal's journal under ``--state DIR`` (one SQLite file per
terminal), runs one operation through the core and the asyncio client, prints what a cashier
would see (or ``--json``) and exits 0 when approved, 1 when declined, 2 on an error (no reply,
bad reply, refused locally).

First use of a state directory: the journal is created with the terminal's configuration
(the demo terminal 10000001 unless ``--tid`` & co say otherwise) and — only then — the demo
operators of docs/demo-data.md (99 sysadmin 12345678, 00 supervisor 123456, 01 and 02 with 0000).
A later run never re-creates them. The TMK is stored in the journal; it is never printed.

A POS sign-on happens by itself before the first transaction of a day (and when the host or a
response code asks for one); ``signon`` does it on demand.
"""

from __future__ import annotations

import json
import os
import sys
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from posgate.domain.masking import mask_pan
from posgate.domain.money import AmountError, fen_to_yuan, yuan_to_fen
from posgate.terminal import cli_checks as checks
from posgate.terminal.cli_checks import optional

DEMO_TERMINALS = {
    "10000001": ("898100012340001", "159D86C7C1F779EA29F77A6858E0DA2A", "DEMO0001"),
    "10000002": ("898100012340001", "31313131313131313232323232323232", "DEMO0002"),
    "20000001": ("898100012340002", "0123456789ABCDEFFEDCBA9876543210", "DEMO0003"),
    # the national-cryptography (国密) terminal: SM4 TMK, signs on with 006
    "40000001": ("898100012340002", "0123456789ABCDEFFEDCBA9876543210", "DEMO0004", "sm4"),
}
DEFAULT_STATE = Path(os.environ.get("POSGATE_TERMINAL_STATE", str(Path.home() / ".posgate" / "terminal")))

app = typer.Typer(
    help="A CUP POS terminal: sign-on, sale, void, refund, pre-auth, offline, settlement... against a posgate host.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
operator_app = typer.Typer(
    help="Terminal operators (99 sysadmin, 00 supervisor, 01.. cashiers).", no_args_is_help=True
)
app.add_typer(operator_app, name="operator")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="terminal")


@app.command("tui")
def tui(
    ctx: typer.Context,
    stub: bool = typer.Option(False, "--stub", help="No host: a built-in stub approves the demo cards."),
    lang: str = typer.Option("zh", "--lang", help="zh or en (F2 toggles).", callback=checks.lang),
    operator: str | None = typer.Option(
        None, "--operator", help="Operator number offered at sign-in (default: the journal's).",
        callback=optional(checks.operator_code),
    ),
) -> None:
    """Full-screen POS terminal emulator (全屏终端): menu, keypad, cards, PIN, signature, slips."""
    from posgate.terminal.tui import main  # Textual loads only for this command

    main(ctx.obj, stub=stub, lang=lang, operator=operator)


@dataclass
class Settings:
    state_dir: Path
    host: str
    port: int
    tid: str | None
    mid: str | None
    tmk: str | None
    tpdu: str
    header: str
    serial: str | None
    scheme: str | None
    timeout: float | None
    algorithm: str | None = None
    profile: str | None = None
    chip_fails: bool = False


# The run's --chip-fails, for the card reader (_card): set by _run from the settings.
_CHIP_FAILS: ContextVar[bool] = ContextVar("chip_fails", default=False)


class Fail(Exception):
    """A refusal before anything is sent: print it and exit 2."""


@app.callback()
def _main(
    ctx: typer.Context,
    state_dir: Path = typer.Option(
        DEFAULT_STATE, "--state", envvar="POSGATE_TERMINAL_STATE", help="Directory of the terminal's journal."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Host address.", callback=checks.host),
    port: int = typer.Option(8583, "--port", help="Host ISO 8583 port (1-65535).", callback=checks.port),
    tid: str | None = typer.Option(
        None, "--tid", help="Terminal id (field 41), 8 digits; default 10000001.", callback=optional(checks.terminal_id)
    ),
    mid: str | None = typer.Option(
        None, "--mid", help="Merchant id (field 42), 15 digits.", callback=optional(checks.merchant_id)
    ),
    tmk: str | None = typer.Option(
        None, "--tmk", help="Terminal master key, 32 hex digits (stored, never shown).", callback=optional(checks.tmk)
    ),
    tpdu: str = typer.Option("6000030000", "--tpdu", help="TPDU, 10 hex digits.", callback=checks.tpdu),
    header: str = typer.Option(
        "603100000000", "--header", help="Message header, 12 digits (the category becomes 61 for IC).",
        callback=checks.header,
    ),
    serial: str | None = typer.Option(
        None, "--serial", help="Device serial sent at sign-on (field 62).", callback=optional(checks.serial)
    ),
    scheme: str | None = typer.Option(
        None, "--scheme", help="Sign-on key scheme: 001, 003 or 004 (default 004).", callback=optional(checks.scheme)
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds to wait for each reply (default: parameter 12, else 60).",
        min=0.1, max=600.0,
    ),
    algorithm: str | None = typer.Option(
        None, "--algorithm", help="Key cipher: des (default) or sm4 (国密: sign-on 006, 32-digit SM4 TMK)."
    ),
    profile: str | None = typer.Option(
        None, "--profile", help="Dialect profile the device speaks (cup, x919, gz-bill, easy8583, pin1, pin3); kept.",
        callback=optional(checks.profile),
    ),
    chip_fails: bool = typer.Option(
        False, "--chip-fails",
        help="Simulate a chip read failure: an inserted card is then swiped as a fallback (60.5 = 2).",
    ),
) -> None:
    ctx.obj = Settings(state_dir, host, port, tid, mid, tmk, tpdu, header, serial, scheme, timeout, algorithm, profile,
                       chip_fails)  # fmt: skip


# ------------------------------------------------------------------ plumbing


def _now() -> datetime:
    return datetime.now(UTC)


def _open(s: Settings) -> Any:
    from posgate.terminal.journal import Journal, JournalKeyError
    from posgate.terminal.state import TerminalConfig

    tid = s.tid
    if tid is None:
        found = sorted(Path(s.state_dir).glob("terminal-*.sqlite")) if Path(s.state_dir).exists() else []
        tid = found[0].name[len("terminal-") : -len(".sqlite")] if len(found) == 1 else "10000001"
    demo = DEMO_TERMINALS.get(tid)
    # A terminal set up here fetches IC public keys and parameters at its first sign-on.
    base = TerminalConfig(terminal_id=tid, ic_params=True)
    if demo:
        base = replace(base, merchant_id=demo[0], tmk=bytes.fromhex(demo[1]), serial=demo[2])
        if len(demo) > 3:
            base = replace(base, algorithm=demo[3])
    try:
        j = Journal.open(s.state_dir, tid, base)
    except JournalKeyError as e:  # a sealed journal without its key (docs/decisions.md S1)
        raise Fail(f"无法读取终端日志 / the terminal journal cannot be opened: {e}") from None
    config = j.config
    changes: dict[str, Any] = {}
    if s.mid:
        changes["merchant_id"] = s.mid
    if s.tmk:
        try:
            key = bytes.fromhex(s.tmk)
        except ValueError:
            raise Fail("--tmk: expected 32 hex digits") from None
        if len(key) not in (16, 24):
            raise Fail("--tmk: expected 32 hex digits")
        changes["tmk"] = key
    if s.serial:
        changes["serial"] = s.serial
    if s.scheme:
        if s.scheme not in ("001", "003", "004"):
            raise Fail("--scheme must be 001, 003 or 004 (an SM4 terminal always signs on with 006)")
        changes["scheme"] = s.scheme
    if s.algorithm:
        if s.algorithm.lower() not in ("des", "sm4"):
            raise Fail("--algorithm must be des or sm4")
        changes["algorithm"] = s.algorithm.lower()
    if s.profile:
        changes["dialect"] = s.profile  # checked against the profiles by its option callback
    new = replace(config, **changes) if changes else config
    if new.algorithm == "sm4" and len(new.tmk) != 16:
        raise Fail("--tmk: an SM4 TMK is 32 hex digits")
    if new.algorithm == "sm4" and s.scheme:
        raise Fail("--scheme: an SM4 (国密) terminal signs on with 006 only")
    if new.algorithm == "sm4" and new.dialect != "cup":
        # A profile's MAC and PIN format are DES ones (docs/dialect-profiles.md).
        raise Fail(f"--profile: an SM4 (国密) terminal speaks the baseline cup only, not {new.dialect}")
    if new != config:
        j.set_config(new)
    if j.created:
        j.seed_demo_operators()
        typer.echo(
            f"新终端日志 / new terminal journal {j.path} (TID {tid}); demo operators 99/00/01/02 created",
            err=True,
        )
    return j


def _session(s: Settings, j: Any) -> Any:
    from posgate.framing import Header, Tpdu
    from posgate.terminal.client import Endpoint, TerminalSession

    try:
        ep = Endpoint(s.host, s.port, Tpdu.from_hex(s.tpdu), Header.from_hex(s.header), s.timeout)
    except ValueError as e:
        raise Fail(str(e)) from None
    return TerminalSession.from_journal(j, ep, _now)


def _operator(j: Any, code: str | None, password: str | None) -> str:
    from posgate.terminal.journal import OperatorError

    if code is None:
        return j.get("operator", "01")
    if password is None:
        raise Fail("请输入操作员密码 / --password is required with --operator")
    try:
        j.verify_operator(code, password, _now())
    except OperatorError as e:
        raise Fail(str(e)) from None
    return code


def _supervisor(j: Any, password: str | None) -> None:
    from posgate.terminal.journal import OperatorError

    if not password:
        raise Fail("需要主管密码 / the supervisor password is required (--supervisor)")
    try:
        j.verify_operator("00", password, _now(), role="supervisor")
    except OperatorError as e:
        raise Fail(str(e)) from None


def _amount(text: str) -> int:
    try:
        return yuan_to_fen(text)
    except AmountError as e:
        raise Fail(f"金额错误 / {e}") from None


def _card(pan: str | None, entry: str, pin: str | None, amount: int = 0, expiry: str | None = None,
          j: Any = None) -> Any:  # fmt: skip
    from posgate.terminal.cards import chip_key, read_card

    if not pan:
        return None
    entry = _after_chip_failure(entry)
    # A simulated chip card's ATC goes up across runs: the journal keeps it (sealed, by PAN).
    atc = j.next_atc(pan) if j is not None and entry in ("insert", "tap") and chip_key(pan) else None
    try:
        return read_card(
            pan, entry, pin=pin or "", amount=amount, when=_now(), randbytes=os.urandom, expiry=expiry, atc=atc
        )
    except ValueError as e:
        raise Fail(str(e)) from None


def _after_chip_failure(entry: str) -> str:
    """``--chip-fails``: the chip of an inserted card cannot be read, so the terminal has the
    card swiped and marks the request as a fallback (22 = 02x, 60.5 = 2; docs/decisions.md C4)."""
    if not _CHIP_FAILS.get():
        return entry
    if entry != "insert":
        raise Fail("--chip-fails 仅用于插卡 / --chip-fails simulates a chip read: use it with --entry insert")
    typer.echo("芯片读卡失败，请刷卡（降级交易） / chip read failed: card swiped (fallback)", err=True)
    return "fallback"


def _card_or_qr(pan: str | None, qr: str | None, entry: str, pin: str | None, amount: int = 0, j: Any = None) -> Any:
    """The card as read, or the customer's payment code as scanned (--qr; docs/decisions.md Q1)."""
    from posgate.terminal.cards import read_qr

    if qr is None:
        if not pan:
            raise Fail("请刷卡或扫码 / --card or --qr is required")
        return _card(pan, entry, pin, amount, j=j)
    if pan:
        raise Fail("--card 与 --qr 只能选一 / give --card or --qr, not both")
    try:
        return read_qr(qr)
    except ValueError as e:
        raise Fail(str(e)) from None


def _signature(path: Path | None) -> tuple[bytes, str]:
    if path is None:
        return b"", ""
    try:
        from posgate.signature import encode_for_field62
    except ImportError:
        return (
            b"",
            "签名模块不可用，未上送签名 / the signature module is not available: signature upload skipped",
        )
    try:
        return encode_for_field62(path.read_bytes()).jbig, ""
    except (OSError, ValueError) as e:
        raise Fail(f"签名图像错误 / cannot use the signature image: {e}") from None


def _emit(result: Any, as_json: bool, extra_notice: str = "", state: Any = None) -> None:
    """Print what the cashier must know, from the final state (posgate.terminal.outcome): the
    title follows the outcome, a pending reversal is said once, plainly, and nothing foretold
    on the way ("will be reversed") contradicts an approval."""
    from posgate.terminal.outcome import bilingual_title, outcome

    seen = outcome(result, state)
    d = result.as_dict()
    d["message"] = seen.message
    d["notices"] = [*seen.notices, *([extra_notice] if extra_notice else [])]
    d["outcome"] = seen.kind
    d["reversal_pending"] = (
        {"stan": state.reversal.stan, "operation": state.reversal.operation}
        if seen.reversal_pending and state is not None
        else None
    )
    d["exit_code"] = result.exit_code
    if as_json:
        typer.echo(json.dumps(d, ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"{bilingual_title(seen.kind, result.operation)}: {seen.message}"
        + (f" [{result.response_code}]" if result.response_code else "")
    )
    if result.action_worth_showing:  # what the cashier does next (call the acquirer, another card...)
        typer.echo(f"  请 ACTION: {result.action}")
    for key, label in (
        ("stan", "凭证号 STAN"),
        ("batch", "批次号 BATCH"),
        ("rrn", "参考号 RRN"),
        ("auth_code", "授权码 AUTH"),
        ("pan_masked", "卡号 CARD"),
    ):
        if d.get(key):
            typer.echo(f"  {label}: {d[key]}")
    if d.get("amount"):
        typer.echo(f"  金额 AMOUNT: RMB {fen_to_yuan(d['amount'])}")
    if d.get("balance") is not None:
        typer.echo(f"  余额 BALANCE: RMB {fen_to_yuan(d['balance'])}")
    if result.settlement and state is not None:
        st = result.settlement
        typer.echo(_settlement_text(dict(st), state, str(st.get("operator") or "01")))
        upload = "完成 complete" if st.get("batch_upload_complete", True) else "未完成 incomplete"
        typer.echo(f"  批上送 batch upload: {st.get('batch_upload_count', 0)} 笔 txns, {upload}")
        if st.get("unsigned"):
            typer.echo(f"  未签名 unsigned: {', '.join(st['unsigned'])}")
        typer.echo(f"  新批次 new batch: {st.get('new_batch', '')}")
    for n in d["notices"]:
        typer.echo(f"  * {n}")


def _run(ctx: typer.Context, as_json: bool, build: Any) -> None:
    """Open the journal, build the Input (may raise Fail), run it, print, exit."""
    from posgate.terminal.journal import OperatorError
    from posgate.terminal.machine import TerminalError

    s: Settings = ctx.obj
    code = 2
    try:
        j = _open(s)
    except Fail as e:
        _refuse(str(e), as_json)
    try:
        _CHIP_FAILS.set(s.chip_fails)
        inp, notice = build(j)
        session = _session(s, j)
        from posgate.terminal.client import run_operation

        result = run_operation(session, inp)
        _emit(result, as_json, notice, session.state)
        code = result.exit_code
    except (Fail, TerminalError, OperatorError) as e:
        j.close()
        _refuse(str(e), as_json)
    j.close()
    raise typer.Exit(code)


def _refuse(message: str, as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "approved": False,
                    "error": "refused",
                    "message": message,
                    "response_code": "",
                    "outcome": "refused",
                    "reversal_pending": None,
                    "exit_code": 2,
                },
                ensure_ascii=False,
            )
        )
    else:
        typer.echo(f"错误 / error: {message}", err=True)
    raise typer.Exit(2)


JSON = typer.Option(False, "--json", help="Machine-readable output.")
CARD = typer.Option(None, "--card", help="Card number (PAN); the reader is simulated.", callback=optional(checks.card_number))
QR = typer.Option(
    None, "--qr", help="扫码 The customer's payment code (UnionPay QR, WeChat Pay, Alipay), as scanned."
)
PIN = typer.Option(None, "--pin", help="Cardholder PIN (encrypted under the PIK at once, never stored).",
                   callback=optional(checks.pin))
ENTRY = typer.Option("swipe", "--entry", help="swipe | insert | tap | manual | fallback", callback=checks.entry_mode)
OPERATOR = typer.Option(None, "--operator", help="Operator code (default: the signed-in operator, else 01).",
                        callback=optional(checks.operator_code))
PASSWORD = typer.Option(None, "--password", help="The operator's password.", callback=optional(checks.password))
SUPERVISOR = typer.Option(None, "--supervisor", help="Supervisor (00) password.", callback=optional(checks.password))
AMOUNT = typer.Argument(..., help="Amount in yuan, e.g. 12.34", callback=checks.amount)
OPT_AMOUNT = typer.Argument(None, help="Amount in yuan, e.g. 12.34", callback=optional(checks.amount))
VOUCHER = typer.Option(..., "--voucher", help="Voucher number (STAN) of the original.", callback=checks.voucher)
OPT_VOUCHER = typer.Option(None, "--voucher", help="Voucher number (STAN).", callback=optional(checks.voucher))
AUTH = typer.Option(None, "--auth", help="Authorisation code (6).", callback=optional(checks.auth_code))
MMDD = typer.Option(None, "--date", help="MMDD of the original.", callback=optional(checks.month_day))  # fmt: skip


# ------------------------------------------------------------------ commands


@app.command()
def signon(ctx: typer.Context, scheme: str | None = typer.Option(None, "--scheme", help="001 | 003 | 004", callback=optional(checks.scheme)),
           operator: str | None = OPERATOR, password: str | None = PASSWORD, as_json: bool = JSON) -> None:  # fmt: skip
    """POS sign-on (签到): download fresh working keys; records the batch and the clock offset."""
    from posgate.terminal.machine import Input

    scheme = scheme or ctx.obj.scheme

    def build(j: Any) -> tuple[Any, str]:
        if scheme and scheme not in ("001", "003", "004"):
            raise Fail("--scheme must be 001, 003 or 004")
        if scheme and j.config.algorithm == "sm4":
            raise Fail("--scheme: an SM4 (国密) terminal signs on with 006 only")
        return Input(
            "sign_on", scheme=scheme or "", operator=_operator(j, operator, password), cause="manual"
        ), ""

    _run(ctx, as_json, build)


@app.command()
def signoff(ctx: typer.Context, as_json: bool = JSON) -> None:
    """POS sign-off (签退)."""
    from posgate.terminal.machine import Input

    _run(ctx, as_json, lambda j: (Input("sign_off", operator=_operator(j, None, None)), ""))


@app.command()
def echo(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Echo test (回响测试) to check the line and the host."""
    from posgate.terminal.machine import Input

    _run(ctx, as_json, lambda j: (Input("echo"), ""))


@app.command()
def sale(ctx: typer.Context, amount: str = AMOUNT, card: str | None = CARD,
         qr: str | None = QR, pin: str | None = PIN, entry: str = ENTRY, operator: str | None = OPERATOR, password: str | None = PASSWORD,
         signature: Path | None = typer.Option(None, "--signature", help="PNG of the cardholder's signature (e-signature upload).",
                                               exists=True, dir_okay=False, readable=True),
         as_json: bool = JSON) -> None:  # fmt: skip
    """Sale (消费): a card, or a scanned payment code (扫码, --qr)."""
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        fen = _amount(amount)
        the_card = _card_or_qr(card, qr, entry, pin, fen, j=j)
        jbig, notice = _signature(signature)
        return Input(
            "sale",
            amount=fen,
            card=the_card,
            operator=_operator(j, operator, password),
            signature=jbig,
        ), notice

    _run(ctx, as_json, build)


@app.command()
def query(ctx: typer.Context, voucher: str | None = typer.Option(None, "--voucher", help="Voucher (STAN) of the QR sale; default: the latest one waiting.",
                                             callback=optional(checks.voucher)),
          as_json: bool = JSON) -> None:  # fmt: skip
    """扫码查询 Query a QR payment that waits for the customer's password (answered 09)."""
    from posgate.terminal.machine import Input

    _run(
        ctx,
        as_json,
        lambda j: (Input("qr_query", voucher=voucher or "", operator=_operator(j, None, None)), ""),
    )


@app.command()
def balance(
    ctx: typer.Context,
    card: str | None = CARD,
    pin: str | None = PIN,
    entry: str = ENTRY,
    as_json: bool = JSON,
) -> None:
    """Balance inquiry (余额查询)."""
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        if not card:
            raise Fail("请刷卡 / --card is required")
        return Input("balance", card=_card(card, entry, pin, j=j), operator=_operator(j, None, None)), ""

    _run(ctx, as_json, build)


@app.command()
def void(ctx: typer.Context, voucher: str = VOUCHER,
         card: str | None = CARD, pin: str | None = PIN, entry: str = ENTRY, supervisor: str | None = SUPERVISOR,
         as_json: bool = JSON) -> None:  # fmt: skip
    """Sale void (消费撤销): needs the supervisor password."""
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        _supervisor(j, supervisor)
        return Input(
            "void", voucher=voucher, card=_card(card, entry, pin, j=j), operator=_operator(j, None, None)
        ), ""

    _run(ctx, as_json, build)


@app.command()
def refund(ctx: typer.Context, amount: str = AMOUNT,
           rrn: str = typer.Option(..., "--rrn", help="RRN of the original transaction (12).", callback=checks.rrn),
           date: str = typer.Option(..., "--date", help="Date of the original transaction, MMDD.", callback=checks.month_day),
           card: str | None = CARD, qr: str | None = QR, pin: str | None = PIN, entry: str = ENTRY,
           supervisor: str | None = SUPERVISOR, as_json: bool = JSON) -> None:  # fmt: skip
    """Refund (退货): needs the supervisor password; not reversible. A QR payment: --qr CODE."""
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        _supervisor(j, supervisor)
        fen = _amount(amount)
        the_card = _card_or_qr(card, qr, entry, pin, fen, j=j)
        return Input(
            "refund",
            amount=fen,
            rrn=rrn,
            orig_date=date,
            card=the_card,
            operator=_operator(j, None, None),
        ), ""

    _run(ctx, as_json, build)


@app.command()
def preauth(ctx: typer.Context, amount: str = AMOUNT, card: str | None = CARD, pin: str | None = PIN,
            entry: str = ENTRY, as_json: bool = JSON) -> None:  # fmt: skip
    """Pre-authorisation (预授权)."""
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        fen = _amount(amount)
        if not card:
            raise Fail("请刷卡 / --card is required")
        return Input(
            "preauth", amount=fen, card=_card(card, entry, pin, fen, j=j), operator=_operator(j, None, None)
        ), ""

    _run(ctx, as_json, build)


def _preauth_ref(name: str, ctx: typer.Context, amount: str | None, auth: str | None, date: str | None, voucher: str | None,
                 card: str | None, pin: str | None, entry: str, supervisor: str | None, as_json: bool) -> None:  # fmt: skip
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        if supervisor:
            _supervisor(j, supervisor)
        fen = _amount(amount) if amount else 0
        inp = Input(name, amount=fen, auth_code=auth or "", orig_date=date or "", voucher=voucher or "",
                    card=_card(card, entry, pin, fen, j=j), operator=_operator(j, None, None))  # fmt: skip
        return inp, ""

    _run(ctx, as_json, build)


@app.command("preauth-void")
def preauth_void(ctx: typer.Context, amount: str | None = OPT_AMOUNT, auth: str | None = AUTH,
                 date: str | None = MMDD, voucher: str | None = OPT_VOUCHER,
                 card: str | None = CARD, pin: str | None = PIN, entry: str = ENTRY, supervisor: str | None = SUPERVISOR,
                 as_json: bool = JSON) -> None:  # fmt: skip
    """Pre-auth void (预授权撤销)."""
    _preauth_ref("preauth_void", ctx, amount, auth, date, voucher, card, pin, entry, supervisor, as_json)


@app.command()
def completion(ctx: typer.Context, amount: str = AMOUNT, auth: str | None = AUTH,
               date: str | None = MMDD, voucher: str | None = OPT_VOUCHER,
               card: str | None = CARD, pin: str | None = PIN, entry: str = ENTRY, supervisor: str | None = SUPERVISOR,
               as_json: bool = JSON) -> None:  # fmt: skip
    """Pre-auth completion (预授权完成)."""
    _preauth_ref("completion", ctx, amount, auth, date, voucher, card, pin, entry, supervisor, as_json)


@app.command("completion-void")
def completion_void(ctx: typer.Context, voucher: str = VOUCHER,
                    card: str | None = CARD, pin: str | None = PIN, entry: str = ENTRY, supervisor: str | None = SUPERVISOR,
                    as_json: bool = JSON) -> None:  # fmt: skip
    """Pre-auth completion void (预授权完成撤销)."""
    _preauth_ref("completion_void", ctx, None, None, None, voucher, card, pin, entry, supervisor, as_json)


@app.command()
def offline(ctx: typer.Context, amount: str | None = OPT_AMOUNT,
            card: str | None = CARD, entry: str = ENTRY, auth: str | None = AUTH,
            kind: str = typer.Option("settlement", "--kind", help="settlement (30) | adjust (32) | tip (34)", callback=checks.offline_kind),
            voucher: str | None = OPT_VOUCHER,
            tip: str | None = typer.Option(None, "--tip", help="Tip in yuan (kind tip).", callback=optional(checks.amount)), as_json: bool = JSON) -> None:  # fmt: skip
    """Offline transaction (离线结算 / 结算调整 / 追加小费): stored now, uploaded after the next online one."""
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        fen = _amount(amount) if amount else 0
        inp = Input("offline", amount=fen, card=_card(card, entry, None, fen, j=j), auth_code=auth or "", kind=kind,
                    voucher=voucher or "", tip=_amount(tip) if tip else 0, operator=_operator(j, None, None))  # fmt: skip
        return inp, ""

    _run(ctx, as_json, build)


@app.command()
def signature(ctx: typer.Context, voucher: str = VOUCHER,
              image: Path = typer.Option(..., "--signature", help="PNG of the signature.", exists=True, dir_okay=False, readable=True),
              as_json: bool = JSON) -> None:  # fmt: skip
    """Upload a (make-up) e-signature for a transaction of the current batch."""
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        jbig, notice = _signature(image)
        if not jbig:
            raise Fail(notice)
        return Input("signature", voucher=voucher, signature=jbig), ""

    _run(ctx, as_json, build)


@app.command()
def settle(ctx: typer.Context, supervisor: str | None = SUPERVISOR, as_json: bool = JSON) -> None:
    """Settlement (结算) with batch upload; needs the supervisor password."""
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        _supervisor(j, supervisor)
        return Input("settlement", operator=_operator(j, None, None)), ""

    _run(ctx, as_json, build)


@app.command()
def params(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Download terminal parameters (参数下载, 0800/360)."""
    from posgate.terminal.machine import Input

    _run(ctx, as_json, lambda j: (Input("parameter_download"), ""))


@app.command("download-ic-params")
def download_ic_params(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Download IC public keys and IC parameters now (IC卡公钥/参数下载, 372/370/371 then 382/380/381);
    also done at the first sign-on and when the host asks for it."""
    from posgate.terminal.machine import Input

    _run(ctx, as_json, lambda j: (Input("ic_download"), ""))


@app.command("status-upload")
def status_upload(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Upload the terminal status (状态上送, 0820/362); also done when the host asks for it."""
    from posgate.terminal.machine import Input

    _run(ctx, as_json, lambda j: (Input("status_upload"), ""))


# ------------------------------------------------------------------ local commands


def _local(ctx: typer.Context) -> Any:
    try:
        return _open(ctx.obj)
    except Fail as e:
        _refuse(str(e), False)


@app.command()
def reprint(ctx: typer.Context, voucher: str | None = OPT_VOUCHER,
            settlement: bool = typer.Option(False, "--settlement", help="Reprint the last settlement slip."), as_json: bool = JSON) -> None:  # fmt: skip
    """Reprint a slip (重打印) from the journal."""
    j = _local(ctx)
    state = j.load()
    if settlement:
        slip = dict(state.last_settlement)
        j.close()
        if not slip:
            _refuse("没有结算记录 / no settlement yet", as_json)
        typer.echo(
            json.dumps(slip, ensure_ascii=False, indent=2)
            if as_json
            else _settlement_text(slip, state, str(slip.get("operator") or "01"), reprint=True)
        )
        return
    t = j.find(voucher) if voucher else (state.txns[-1] if state.txns else None)
    if t is None:
        rows = j.transactions(include_settled=True)
        t = rows[-1][0] if rows and not voucher else None
    j.close()
    if t is None:
        _refuse(f"无此交易 / no transaction {voucher or ''}".strip(), as_json)
    assert t is not None
    if as_json:
        typer.echo(json.dumps(_txn_json(t), ensure_ascii=False, indent=2))
        return
    typer.echo(_slip_text(t, state))


def _txn_json(t: Any) -> dict[str, Any]:
    return {
        "stan": t.stan, "batch": t.batch, "operation": t.operation, "amount": t.amount, "pan_masked": mask_pan(t.pan),
        "rrn": t.rrn, "auth_code": t.auth_code, "date": t.date, "time": t.time, "status": t.status,
        "card_org": t.card_org, "signature": t.signature, "operator": t.operator, "original_stan": t.original_stan,
    }  # fmt: skip


def _slip_text(t: Any, state: Any) -> str:
    """The reprinted merchant copy, built where the TUI builds it (signature state included)."""
    from posgate.receipt import render_text
    from posgate.terminal.slips import slip_for

    return str(render_text(slip_for(state, t, reprint=True)))


def _settlement_text(slip: dict[str, Any], state: Any, operator: str, *, reprint: bool = False) -> str:
    """The settlement slip (totals per side, balanced or not), as the TUI shows it."""
    from posgate.receipt import render_settlement_text
    from posgate.terminal.slips import settlement_slip_from

    return str(render_settlement_text(settlement_slip_from(slip, state, operator, reprint=reprint)))


@app.command("ic-params")
def ic_params(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Show the IC public keys and IC parameters loaded (AIDs with their contactless limits)."""
    from posgate.terminal.operations.ic_params import loaded_aids, loaded_capks

    j = _local(ctx)
    state = j.load()
    j.close()
    capks, aids = loaded_capks(state), loaded_aids(state)
    if as_json:
        out = {"capks": [c.as_dict() for c in capks], "capks_at": state.ic.get("capks_at", ""),
               "aids": [a.as_dict() for a in aids], "aids_at": state.ic.get("aids_at", "")}  # fmt: skip
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if not state.ic:
        typer.echo("未下载IC卡参数 / no IC public keys or parameters loaded: posgate terminal download-ic-params")
        return
    typer.echo(f"IC卡公钥 / CA public keys ({len(capks)}, {state.ic.get('capks_at', '-')}):")
    for c in capks:
        typer.echo(f"  {c.rid} {c.index}  expires {c.expiry}  {len(c.modulus) * 4} bits  check {c.check_value}")
    typer.echo(f"IC卡参数 / AIDs ({len(aids)}, {state.ic.get('aids_at', '-')}):")
    for a in aids:
        typer.echo(f"  {a.aid}  免密限额 no-CVM limit {fen_to_yuan(a.cvm_limit)}  非接交易限额 contactless limit "
                   f"{fen_to_yuan(a.cl_transaction_limit)}  脱机最低限额 floor {fen_to_yuan(a.cl_floor_limit)}")  # fmt: skip


@app.command()
def journal(ctx: typer.Context, all_batches: bool = typer.Option(False, "--all", help="Include settled batches."),
            events: bool = typer.Option(False, "--events", help="Show the event register (sign-ons with their cause, reversals...)."),
            as_json: bool = JSON) -> None:  # fmt: skip
    """Show the journal: terminal status, transactions of the batch, events. The TMK is never shown."""
    j = _local(ctx)
    state = j.load()
    c = state.config
    status = {
        "terminal_id": c.terminal_id, "merchant_id": c.merchant_id, "serial": c.serial, "scheme": c.sign_on_scheme(),
        "algorithm": c.algorithm,
        "signed_on": state.keys is not None, "signed_on_date": state.signed_on_date, "sign_on_owed": state.sign_on_owed,
        "batch": state.batch, "last_stan": f"{state.stan:06d}", "clock_offset": state.clock_offset,
        "pending_reversal": None if state.reversal is None else {"stan": state.reversal.stan, "operation": state.reversal.operation,
                                                                  "reason": state.reversal.reason, "attempts": state.reversal.attempts},
        "signatures_pending": sorted(state.signatures), "parameters": dict(state.params), "operator": j.get("operator", ""),
        "journal": str(j.path),
    }  # fmt: skip
    txns = [dict(_txn_json(t), settled=settled) for t, settled in j.transactions(include_settled=all_batches)]
    evs = [e.__dict__ if hasattr(e, "__dict__") else {"at": e.at, "kind": e.kind, "cause": e.cause, "result": e.result, "detail": e.detail}
           for e in j.events()] if events else []  # fmt: skip
    j.close()
    if as_json:
        typer.echo(
            json.dumps({"status": status, "transactions": txns, "events": evs}, ensure_ascii=False, indent=2)
        )
        return
    for k, v in status.items():
        typer.echo(f"{k}: {v}")
    for t in txns:
        typer.echo(
            f"{t['batch']}/{t['stan']} {t['operation']:<18} RMB {fen_to_yuan(t['amount']):>12} {t['pan_masked']} {t['status']} {t['rrn']} {t['signature']}"
        )
    for e in evs:
        typer.echo(f"{e['at']} {e['kind']} [{e['cause']}] {e['result']} {e['detail']}")


@operator_app.command("list")
def operator_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """List the operators (never their passwords)."""
    j = _local(ctx)
    ops = j.operators()
    current = j.get("operator", "")
    rows = [
        {"code": o.code, "role": o.role, "locked_until": o.locked_until, "signed_in": o.code == current,
         "locked_until_local": j.local_time(o.locked_until) if o.locked_until else None}
        for o in ops
    ]  # fmt: skip
    j.close()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for r in rows:
            typer.echo(
                f"{r['code']} {r['role']}{' *' if r['signed_in'] else ''}{' locked until ' + r['locked_until_local'] if r['locked_until_local'] else ''}"
            )


@operator_app.command("add")
def operator_add(ctx: typer.Context, code: str = typer.Argument(..., callback=checks.operator_code),
                 password: str = typer.Option(..., "--password", callback=checks.password),
                 role: str = typer.Option("operator", "--role", callback=checks.role),
                 admin: str = typer.Option(..., "--admin", help="Password of 99 (or 00 for operators).", callback=checks.password)) -> None:  # fmt: skip
    """Add an operator (needs the system administrator's password; the supervisor's for cashiers)."""
    from posgate.terminal.journal import OperatorError

    j = _local(ctx)
    try:
        try:
            j.verify_operator("99", admin, _now(), role="sysadmin")
        except OperatorError:
            if role != "operator":
                raise
            j.verify_operator("00", admin, _now(), role="supervisor")
        j.add_operator(code, role, password)
    except OperatorError as e:
        j.close()
        _refuse(str(e), False)
    j.close()
    typer.echo(f"操作员 {code} 已添加 / operator {code} added")


@operator_app.command("passwd")
def operator_passwd(ctx: typer.Context, code: str = typer.Argument(..., callback=checks.operator_code),
                    old: str = typer.Option(..., "--old", callback=checks.password),
                    new: str = typer.Option(..., "--new", callback=checks.password)) -> None:  # fmt: skip
    """Change an operator's password (give the old one, or 99's for another operator)."""
    from posgate.terminal.journal import OperatorError

    j = _local(ctx)
    try:
        try:
            j.verify_operator(code, old, _now())
        except OperatorError:
            if code == "99":
                raise
            j.verify_operator("99", old, _now(), role="sysadmin")
        j.set_password(code, new)
    except OperatorError as e:
        j.close()
        _refuse(str(e), False)
    j.close()
    typer.echo(f"密码已修改 / password of {code} changed")


@operator_app.command("signin")
def operator_signin(
    ctx: typer.Context,
    code: str = typer.Argument(..., callback=checks.operator_code),
    password: str = typer.Option(..., "--password", callback=checks.password),
) -> None:
    """Operator sign-in (操作员签到, local): later transactions carry this operator."""
    from posgate.terminal.journal import OperatorError

    j = _local(ctx)
    try:
        op = j.verify_operator(code, password, _now())
        if op.role == "sysadmin":
            raise OperatorError(
                "系统管理员不能交易 / the system administrator cannot sign in for transactions"
            )
        j.put("operator", code)
    except OperatorError as e:
        j.close()
        _refuse(str(e), False)
    j.close()
    typer.echo(f"操作员 {code} 已签到 / operator {code} signed in")


def main() -> None:  # pragma: no cover - ``python -m posgate.terminal.cli``
    app()
    sys.exit(0)
