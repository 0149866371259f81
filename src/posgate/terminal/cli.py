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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from posgate.domain.masking import mask_pan
from posgate.domain.money import AmountError, fen_to_yuan, yuan_to_fen

DEMO_TERMINALS = {
    "10000001": ("898100012340001", "159D86C7C1F779EA29F77A6858E0DA2A", "DEMO0001"),
    "10000002": ("898100012340001", "31313131313131313232323232323232", "DEMO0002"),
    "20000001": ("898100012340002", "0123456789ABCDEFFEDCBA9876543210", "DEMO0003"),
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
    lang: str = typer.Option("zh", "--lang", help="zh or en (F2 toggles)."),
    operator: str | None = typer.Option(None, "--operator", help="Operator number (default: the journal's)."),
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


class Fail(Exception):
    """A refusal before anything is sent: print it and exit 2."""


@app.callback()
def _main(
    ctx: typer.Context,
    state_dir: Path = typer.Option(
        DEFAULT_STATE, "--state", envvar="POSGATE_TERMINAL_STATE", help="Directory of the terminal's journal."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Host address."),
    port: int = typer.Option(8583, "--port", help="Host ISO 8583 port."),
    tid: str | None = typer.Option(None, "--tid", help="Terminal id (field 41); default 10000001."),
    mid: str | None = typer.Option(None, "--mid", help="Merchant id (field 42)."),
    tmk: str | None = typer.Option(
        None, "--tmk", help="Terminal master key, 32 hex digits (stored, never shown)."
    ),
    tpdu: str = typer.Option("6000030000", "--tpdu", help="TPDU, 10 hex digits."),
    header: str = typer.Option(
        "603100000000", "--header", help="Message header, 12 digits (the category becomes 61 for IC)."
    ),
    serial: str | None = typer.Option(None, "--serial", help="Device serial sent at sign-on (field 62)."),
    scheme: str | None = typer.Option(
        None, "--scheme", help="Sign-on key scheme: 001, 003 or 004 (default 004)."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds to wait for each reply (default: parameter 12, else 60)."
    ),
) -> None:
    ctx.obj = Settings(state_dir, host, port, tid, mid, tmk, tpdu, header, serial, scheme, timeout)


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
    base = TerminalConfig(terminal_id=tid)
    if demo:
        base = replace(base, merchant_id=demo[0], tmk=bytes.fromhex(demo[1]), serial=demo[2])
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
            raise Fail("--scheme must be 001, 003 or 004")
        changes["scheme"] = s.scheme
    new = replace(config, **changes) if changes else config
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
    # A simulated chip card's ATC goes up across runs: the journal keeps it (sealed, by PAN).
    atc = j.next_atc(pan) if j is not None and entry in ("insert", "tap") and chip_key(pan) else None
    try:
        return read_card(
            pan, entry, pin=pin or "", amount=amount, when=_now(), randbytes=os.urandom, expiry=expiry, atc=atc
        )
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


def _emit(result: Any, as_json: bool, extra_notice: str = "") -> None:
    d = result.as_dict()
    if extra_notice:
        d["notices"] = [*d["notices"], extra_notice]
    d["exit_code"] = result.exit_code
    if as_json:
        typer.echo(json.dumps(d, ensure_ascii=False, indent=2))
    else:
        head = "交易成功" if result.approved else ("交易失败" if result.error else "交易拒绝")
        typer.echo(
            f"{head}: {result.message}" + (f" [{result.response_code}]" if result.response_code else "")
        )
        if result.action_worth_showing:
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
        if result.settlement:
            st = result.settlement
            typer.echo(
                f"  内卡 domestic: {st['domestic_result_text']}  外卡 foreign: {st['foreign_result_text']}  批上送 uploaded: {st['batch_upload_count']}"
            )
            typer.echo(f"  新批次 new batch: {st['new_batch']}")
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
        inp, notice = build(j)
        session = _session(s, j)
        from posgate.terminal.client import run_operation

        result = run_operation(session, inp)
        _emit(result, as_json, notice)
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
                    "exit_code": 2,
                },
                ensure_ascii=False,
            )
        )
    else:
        typer.echo(f"错误 / error: {message}", err=True)
    raise typer.Exit(2)


JSON = typer.Option(False, "--json", help="Machine-readable output.")
CARD = typer.Option(None, "--card", help="Card number (PAN); the reader is simulated.")
PIN = typer.Option(None, "--pin", help="Cardholder PIN (encrypted under the PIK at once, never stored).")
ENTRY = typer.Option("swipe", "--entry", help="swipe | insert | tap | manual | fallback")
OPERATOR = typer.Option(None, "--operator", help="Operator code (default: the signed-in operator, else 01).")
PASSWORD = typer.Option(None, "--password", help="The operator's password.")
SUPERVISOR = typer.Option(None, "--supervisor", help="Supervisor (00) password.")


# ------------------------------------------------------------------ commands


@app.command()
def signon(ctx: typer.Context, scheme: str | None = typer.Option(None, "--scheme", help="001 | 003 | 004"),
           operator: str | None = OPERATOR, password: str | None = PASSWORD, as_json: bool = JSON) -> None:  # fmt: skip
    """POS sign-on (签到): download fresh working keys; records the batch and the clock offset."""
    from posgate.terminal.machine import Input

    scheme = scheme or ctx.obj.scheme

    def build(j: Any) -> tuple[Any, str]:
        if scheme and scheme not in ("001", "003", "004"):
            raise Fail("--scheme must be 001, 003 or 004")
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
def sale(ctx: typer.Context, amount: str = typer.Argument(..., help="Amount in yuan, e.g. 12.34"), card: str | None = CARD,
         pin: str | None = PIN, entry: str = ENTRY, operator: str | None = OPERATOR, password: str | None = PASSWORD,
         signature: Path | None = typer.Option(None, "--signature", help="PNG of the cardholder's signature (e-signature upload)."),
         as_json: bool = JSON) -> None:  # fmt: skip
    """Sale (消费)."""
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        fen = _amount(amount)
        if not card:
            raise Fail("请刷卡 / --card is required")
        jbig, notice = _signature(signature)
        return Input(
            "sale",
            amount=fen,
            card=_card(card, entry, pin, fen, j=j),
            operator=_operator(j, operator, password),
            signature=jbig,
        ), notice

    _run(ctx, as_json, build)


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
def void(ctx: typer.Context, voucher: str = typer.Option(..., "--voucher", help="Voucher number (STAN) of the sale."),
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
def refund(ctx: typer.Context, amount: str = typer.Argument(..., help="Amount in yuan."),
           rrn: str = typer.Option(..., "--rrn", help="RRN of the original transaction."),
           date: str = typer.Option(..., "--date", help="Date of the original transaction, MMDD."),
           card: str | None = CARD, pin: str | None = PIN, entry: str = ENTRY, supervisor: str | None = SUPERVISOR,
           as_json: bool = JSON) -> None:  # fmt: skip
    """Refund (退货): needs the supervisor password; not reversible."""
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        _supervisor(j, supervisor)
        fen = _amount(amount)
        if not card:
            raise Fail("请刷卡 / --card is required")
        return Input(
            "refund",
            amount=fen,
            rrn=rrn,
            orig_date=date,
            card=_card(card, entry, pin, fen, j=j),
            operator=_operator(j, None, None),
        ), ""

    _run(ctx, as_json, build)


@app.command()
def preauth(ctx: typer.Context, amount: str = typer.Argument(...), card: str | None = CARD, pin: str | None = PIN,
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
def preauth_void(ctx: typer.Context, amount: str | None = typer.Argument(None), auth: str | None = typer.Option(None, "--auth"),
                 date: str | None = typer.Option(None, "--date", help="MMDD of the pre-auth"), voucher: str | None = typer.Option(None, "--voucher"),
                 card: str | None = CARD, pin: str | None = PIN, entry: str = ENTRY, supervisor: str | None = SUPERVISOR,
                 as_json: bool = JSON) -> None:  # fmt: skip
    """Pre-auth void (预授权撤销)."""
    _preauth_ref("preauth_void", ctx, amount, auth, date, voucher, card, pin, entry, supervisor, as_json)


@app.command()
def completion(ctx: typer.Context, amount: str = typer.Argument(...), auth: str | None = typer.Option(None, "--auth"),
               date: str | None = typer.Option(None, "--date", help="MMDD of the pre-auth"), voucher: str | None = typer.Option(None, "--voucher"),
               card: str | None = CARD, pin: str | None = PIN, entry: str = ENTRY, supervisor: str | None = SUPERVISOR,
               as_json: bool = JSON) -> None:  # fmt: skip
    """Pre-auth completion (预授权完成)."""
    _preauth_ref("completion", ctx, amount, auth, date, voucher, card, pin, entry, supervisor, as_json)


@app.command("completion-void")
def completion_void(ctx: typer.Context, voucher: str = typer.Option(..., "--voucher", help="Voucher (STAN) of the completion."),
                    card: str | None = CARD, pin: str | None = PIN, entry: str = ENTRY, supervisor: str | None = SUPERVISOR,
                    as_json: bool = JSON) -> None:  # fmt: skip
    """Pre-auth completion void (预授权完成撤销)."""
    _preauth_ref("completion_void", ctx, None, None, None, voucher, card, pin, entry, supervisor, as_json)


@app.command()
def offline(ctx: typer.Context, amount: str | None = typer.Argument(None, help="Amount in yuan (settlement, adjust)."),
            card: str | None = CARD, entry: str = ENTRY, auth: str | None = typer.Option(None, "--auth", help="Phone authorisation code."),
            kind: str = typer.Option("settlement", "--kind", help="settlement (30) | adjust (32) | tip (34)"),
            voucher: str | None = typer.Option(None, "--voucher", help="Voucher to adjust / add a tip to."),
            tip: str | None = typer.Option(None, "--tip", help="Tip in yuan (kind tip)."), as_json: bool = JSON) -> None:  # fmt: skip
    """Offline transaction (离线结算 / 结算调整 / 追加小费): stored now, uploaded after the next online one."""
    from posgate.terminal.machine import Input

    def build(j: Any) -> tuple[Any, str]:
        fen = _amount(amount) if amount else 0
        inp = Input("offline", amount=fen, card=_card(card, entry, None, fen, j=j), auth_code=auth or "", kind=kind,
                    voucher=voucher or "", tip=_amount(tip) if tip else 0, operator=_operator(j, None, None))  # fmt: skip
        return inp, ""

    _run(ctx, as_json, build)


@app.command()
def signature(ctx: typer.Context, voucher: str = typer.Option(..., "--voucher"),
              image: Path = typer.Option(..., "--signature", help="PNG of the signature."), as_json: bool = JSON) -> None:  # fmt: skip
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
def reprint(ctx: typer.Context, voucher: str | None = typer.Option(None, "--voucher", help="Voucher (STAN); default the last."),
            settlement: bool = typer.Option(False, "--settlement", help="Reprint the last settlement slip."), as_json: bool = JSON) -> None:  # fmt: skip
    """Reprint a slip (重打印) from the journal."""
    j = _local(ctx)
    state = j.load()
    if settlement:
        slip = dict(state.last_settlement)
        j.close()
        if not slip:
            _refuse("没有结算记录 / no settlement yet", as_json)
        typer.echo(json.dumps(slip, ensure_ascii=False, indent=2) if as_json else _settlement_text(slip))
        return
    t = j.find(voucher) if voucher else (state.txns[-1] if state.txns else None)
    if t is None:
        rows = j.transactions(include_settled=True)
        t = rows[-1][0] if rows and not voucher else None
    config = j.config
    j.close()
    if t is None:
        _refuse(f"无此交易 / no transaction {voucher or ''}".strip(), as_json)
    assert t is not None
    if as_json:
        typer.echo(json.dumps(_txn_json(t), ensure_ascii=False, indent=2))
        return
    typer.echo(_slip_text(t, config, state.merchant_name))


def _txn_json(t: Any) -> dict[str, Any]:
    return {
        "stan": t.stan, "batch": t.batch, "operation": t.operation, "amount": t.amount, "pan_masked": mask_pan(t.pan),
        "rrn": t.rrn, "auth_code": t.auth_code, "date": t.date, "time": t.time, "status": t.status,
        "card_org": t.card_org, "signature": t.signature, "operator": t.operator, "original_stan": t.original_stan,
    }  # fmt: skip


def _slip_text(t: Any, config: Any, merchant_name: str) -> str:
    try:
        from posgate.receipt import Slip, render_text

        when = datetime.fromisoformat(t.at) if t.at else _now()
        entry = {"01": "manual", "02": "swipe", "05": "insert", "07": "tap"}.get(t.entry_mode[:2], "")
        slip = Slip(merchant_name=merchant_name, merchant_id=config.merchant_id, terminal_id=config.terminal_id,
                    operator=t.operator, card_number=t.pan, operation=t.operation, batch_no=t.batch, stan=t.stan,
                    when=when, amount=t.amount, card_org=t.card_org, entry_mode=entry, auth_code=t.auth_code, rrn=t.rrn,
                    original_stan=t.original_stan, signature_required=t.signature != "", reprint=True)  # fmt: skip
        return str(render_text(slip))
    except Exception:  # noqa: BLE001 - the colleague's module may change; fall back to a plain slip
        from posgate.dialect.operations import OPERATIONS

        o = OPERATIONS[t.operation]
        lines = [
            "POS签购单 (重打印 REPRINT)", f"商户名称: {merchant_name}", f"商户编号: {config.merchant_id}", f"终端编号: {config.terminal_id}",
            f"卡号: {mask_pan(t.pan)}", f"交易类型: {o.zh} {o.en}", f"批次号: {t.batch}  凭证号: {t.stan}",
            f"授权码: {t.auth_code}  参考号: {t.rrn}", f"日期时间: {t.at}", f"金额: RMB {fen_to_yuan(t.amount)}",
        ]  # fmt: skip
        return "\n".join(lines)


def _settlement_text(slip: dict[str, Any]) -> str:
    try:
        from posgate.dialect.fields import SideTotals
        from posgate.receipt import SettlementSlip, render_settlement_text

        def side_totals(name: str) -> SideTotals:
            t = slip.get("totals", {}).get(name, {})
            return SideTotals(t.get("debit_amount", 0), t.get("debit_count", 0), t.get("credit_amount", 0),
                              t.get("credit_count", 0), slip.get(name + "_result", "3"))  # fmt: skip

        return str(render_settlement_text(SettlementSlip(
            merchant_name=slip.get("merchant_name", ""), merchant_id=slip.get("merchant_id", ""),
            terminal_id=slip.get("terminal_id", ""), operator=slip.get("operator", "01"), batch_no=slip.get("settled_batch", ""),
            when=datetime.fromisoformat(slip["settled_at"]), domestic=side_totals("domestic"), foreign=side_totals("foreign"), reprint=True,
        )))  # fmt: skip
    except Exception:  # noqa: BLE001, S110 - the colleague's module may change; fall back to plain lines
        pass
    lines = [
        f"结算总计单 SETTLEMENT  批次号 {slip.get('settled_batch')}",
        f"商户 {slip.get('merchant_name')} {slip.get('merchant_id')}  终端 {slip.get('terminal_id')}",
    ]
    for side, zh in (("domestic", "内卡"), ("foreign", "外卡")):
        tot = slip.get("totals", {}).get(side, {})
        lines.append(
            f"{zh}: 借记 {tot.get('debit_count', 0)} 笔 RMB {fen_to_yuan(tot.get('debit_amount', 0))}  "
            f"贷记 {tot.get('credit_count', 0)} 笔 RMB {fen_to_yuan(tot.get('credit_amount', 0))}  {slip.get(side + '_result_text')}"
        )
    lines.append(f"批上送 {slip.get('batch_upload_count')} 笔; 时间 {slip.get('settled_at')}")
    return "\n".join(lines)


@app.command()
def journal(ctx: typer.Context, all_batches: bool = typer.Option(False, "--all", help="Include settled batches."),
            events: bool = typer.Option(False, "--events", help="Show the event register (sign-ons with their cause, reversals...)."),
            as_json: bool = JSON) -> None:  # fmt: skip
    """Show the journal: terminal status, transactions of the batch, events. The TMK is never shown."""
    j = _local(ctx)
    state = j.load()
    c = state.config
    status = {
        "terminal_id": c.terminal_id, "merchant_id": c.merchant_id, "serial": c.serial, "scheme": c.scheme,
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
    j.close()
    rows = [
        {"code": o.code, "role": o.role, "locked_until": o.locked_until, "signed_in": o.code == current}
        for o in ops
    ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for r in rows:
            typer.echo(
                f"{r['code']} {r['role']}{' *' if r['signed_in'] else ''}{' locked until ' + r['locked_until'] if r['locked_until'] else ''}"
            )


@operator_app.command("add")
def operator_add(ctx: typer.Context, code: str = typer.Argument(...), password: str = typer.Option(..., "--password"),
                 role: str = typer.Option("operator", "--role"), admin: str = typer.Option(..., "--admin", help="Password of 99 (or 00 for operators).")) -> None:  # fmt: skip
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
def operator_passwd(ctx: typer.Context, code: str = typer.Argument(...), old: str = typer.Option(..., "--old"),
                    new: str = typer.Option(..., "--new")) -> None:  # fmt: skip
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
    ctx: typer.Context, code: str = typer.Argument(...), password: str = typer.Option(..., "--password")
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
