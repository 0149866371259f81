"""``posgate terminal tui``: a full-screen CUP POS terminal emulator (Textual).

Theory of operation
-------------------
The TUI is a shell, like the CLI: it owns no business rule. Every transaction is an
:class:`~posgate.terminal.operations.base.Input` handed to a :class:`PosBackend`, which runs the
terminal core (sign-on, MAC, reversal, trickle ...) and answers with a
:class:`~posgate.terminal.operations.base.Result`. Two backends exist:

* :class:`ClientBackend` wraps the asyncio terminal client (a real host over TCP, with the
  durable journal);
* :class:`StubBackend` approves in memory (the demo card rules of ``docs/demo-data.md``): for
  trying the screens without a host, and for the TUI's own tests.

A cashier's operation is a *flow*: a worker coroutine that pushes one screen after another and
awaits each one's answer (``push_screen_wait``) — amount, card, PIN, processing, result,
signature, slip — exactly the order a real POS walks through. Screens are small and generic
(:class:`EntryScreen` for amounts, digits and masked secrets; :class:`ChoiceScreen` for menus;
:class:`CardScreen`, :class:`SignatureScreen`, :class:`SlipScreen`), so a flow reads like the
CUP operating manual. Escape cancels a flow at any screen before the request leaves; once it
has left, only the core decides (reversal, retry).

The signature is drawn with the mouse on :class:`SignatureCanvas` (strokes in character-cell
coordinates, fractional when the terminal reports pixels), rendered with PIL by
:class:`posgate.signature.StrokesPad` at 8 x 16 pixels a cell, made a JBIG1 of at most 999
bytes and uploaded (0820, 60.1 = 07). Skipping leaves the transaction unsigned (未签名) until a
make-up signature (补签) is taken from the admin menu. Slips are
:func:`posgate.receipt.render_text` on screen; a PDF can be saved.

Language (中文 / English) toggles with F2; the status line shows sign-on, batch, STAN, pending
reversal, offline and unsigned counts and the host address. Card numbers are masked everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from posgate.domain.masking import mask_pan
from posgate.domain.money import fen_to_yuan
from posgate.domain.response_codes import describe
from posgate.receipt import SettlementSlip, Slip, render_settlement_text, render_text
from posgate.signature import SignatureError, SignatureImage, StrokesPad, encode_for_field62
from posgate.terminal.outcome import outcome
from posgate.terminal.outcome import title as outcome_title
from posgate.terminal.slips import settlement_slip_from, slip_for

if TYPE_CHECKING:
    from posgate.terminal.operations.base import Card, Input, Result
    from posgate.terminal.state import TerminalState, TxnEntry

# ============================================================================ words

WORDS: dict[str, tuple[str, str]] = {
    "app_title": ("posgate 银联POS终端", "posgate CUP POS terminal"),
    "menu": ("主菜单", "MAIN MENU"),
    "sale": ("消费", "Sale"),
    "void": ("撤销", "Void"),
    "refund": ("退货", "Refund"),
    "balance": ("查询余额", "Balance"),
    "preauth_menu": ("预授权", "Pre-auth"),
    "settlement": ("结算", "Settlement"),
    "sign_on": ("签到", "Sign on"),
    "sign_off": ("签退", "Sign off"),
    "reprint": ("重打印", "Reprint"),
    "admin": ("管理", "Admin"),
    "preauth": ("预授权", "Pre-authorisation"),
    "preauth_void": ("预授权撤销", "Pre-auth void"),
    "completion": ("预授权完成", "Pre-auth completion"),
    "completion_void": ("预授权完成撤销", "Completion void"),
    "enter_amount": ("请输入金额", "Enter the amount"),
    "enter_voucher": ("请输入原凭证号", "Original voucher number"),
    "enter_rrn": ("请输入原参考号", "Original reference number (RRN)"),
    "enter_date": ("请输入原交易日期(MMDD)", "Original date (MMDD)"),
    "enter_auth": ("请输入原授权码", "Original authorisation code"),
    "enter_pan": ("请输入卡号", "Card number"),
    "enter_expiry": ("请输入有效期(YYMM)", "Expiry date (YYMM)"),
    "supervisor_pwd": ("请输入主管密码", "Supervisor password"),
    "login": ("操作员签到", "Operator sign-in"),
    "enter_operator": ("请输入操作员号", "Operator number"),
    "enter_op_pwd": ("请输入操作员密码", "Operator password"),
    "login_failed": ("签到失败", "Sign-in refused"),
    "admin_no_trade": (
        "系统管理员不能交易，请用操作员号签到",
        "The system administrator cannot trade: sign in as an operator",
    ),
    "welcome": ("操作员已签到", "Operator signed in"),
    "unsigned_settled": ("未签名交易已结算", "Settled unsigned"),
    "upload_incomplete": ("批上送未完成，请再次结算", "Batch upload incomplete: settle again"),
    "admin_pwd": ("请输入系统管理员密码", "System administrator password"),
    "wrong_pwd": ("密码错误", "Wrong password"),
    "enter_pin": ("请持卡人输入密码", "Cardholder, enter your PIN"),
    "pin_skip": ("无密码请直接按确认", "No PIN: press Enter"),
    "present_card": ("请刷卡/插卡/挥卡", "Swipe, insert or tap a card"),
    "choose_card": ("选择演示卡", "Choose a demo card"),
    "swipe": ("刷卡", "Swipe"),
    "insert": ("插卡", "Insert"),
    "tap": ("挥卡", "Tap"),
    "manual": ("手输卡号", "Manual"),
    "qr": ("扫码", "Scan code"),
    "scan_code": ("请扫描或输入顾客付款码", "Scan or type the customer's payment code"),
    "bad_code": ("付款码无效", "Invalid payment code"),
    "qr_wait": ("等待顾客输入密码", "Waiting for the customer's password"),
    "qr_query_now": ("顾客输入密码后按确认查询，Esc 放弃", "Press Enter to query once the customer has entered the password; Esc to stop"),
    "processing": ("处理中，请稍候…", "Processing, please wait…"),
    "approved": ("交易成功", "Approved"),
    "declined": ("交易失败", "Declined"),
    "sign_here": ("请持卡人签名", "Cardholder, please sign"),
    "sign_hint": ("用鼠标在框内签名", "Sign in the box with the mouse"),
    "clear": ("清除", "Clear"),
    "confirm": ("确认", "OK"),
    "cancel": ("取消", "Cancel"),
    "skip": ("跳过", "Skip"),
    "sample": ("示例签名", "Sample"),
    "next_copy": ("打印下一联", "Next copy"),
    "done": ("完成", "Done"),
    "save_pdf": ("保存PDF", "Save PDF"),
    "saved": ("已保存", "Saved"),
    "uploaded_sig": ("电子签名已上送", "E-signature uploaded"),
    "unsigned_left": ("未签名，请稍后补签", "Unsigned: take a make-up signature later"),
    "blank_sig": ("签名为空，请签名", "The signature is blank: please sign"),
    "confirm_settle": ("按确认键结算", "Press Enter to settle"),
    "reprint_last": ("重打印最后一笔", "Reprint the last slip"),
    "reprint_any": ("重打印任意一笔", "Reprint any slip"),
    "reprint_settle": ("重打印结算单", "Reprint the settlement slip"),
    "no_txn": ("无此交易", "No such transaction"),
    "no_slip": ("无可打印的单据", "Nothing to print"),
    "echo": ("回响测试", "Echo test"),
    "make_up": ("补签", "Make-up signature"),
    "params": ("参数下载", "Parameter download"),
    "status": ("状态上送", "Status upload"),
    "ic_params": ("IC卡公钥/参数下载", "IC keys and parameters download"),
    "info": ("终端信息", "Terminal information"),
    "language": ("切换语言 English", "Language: 中文"),
    "choose_unsigned": ("选择未签名交易", "Choose an unsigned transaction"),
    "none_unsigned": ("没有未签名交易", "No unsigned transactions"),
    "original": ("原交易", "Original"),
    "balance_is": ("余额", "Balance"),
    "signed_on": ("已签到", "SIGNED ON"),
    "signed_off": ("未签到", "NOT SIGNED ON"),
    "batch": ("批次", "Batch"),
    "stan": ("流水", "STAN"),
    "reversal": ("冲正", "Rev"),
    "offline": ("离线", "Offl"),
    "unsigned": ("未签", "Unsig"),
    "operator": ("操作员", "Op"),
    "keys_help": ("F2 中/英  Esc 返回  Ctrl+Q 退出", "F2 zh/en  Esc back  Ctrl+Q quit"),
}


def word(key: str, lang: str) -> str:
    zh, en = WORDS[key]
    return en if lang == "en" else zh


# ============================================================================ demo cards


@dataclass(frozen=True, slots=True)
class DemoCard:
    pan: str
    expiry: str
    kind_zh: str
    kind_en: str
    chip: bool = False

    @property
    def track2(self) -> str:
        return f"{self.pan}={self.expiry}2010000000000"

    def label(self, lang: str) -> str:
        return f"{mask_pan(self.pan)}  {self.kind_en if lang == 'en' else self.kind_zh}"


DEMO_CARDS: tuple[DemoCard, ...] = (
    DemoCard("6212142000000000012", "3012", "借记卡 批准", "debit, approved"),
    DemoCard("6225880000000000010", "3012", "贷记卡 IC 批准", "credit, chip, approved", chip=True),
    DemoCard("4761730000000011", "3012", "外卡 Visa 批准", "foreign Visa, approved"),
    DemoCard("6217000000000000020", "3012", "余额10元 (51)", "balance 10.00 (51)"),
    DemoCard("6217000000000000038", "2001", "过期卡 (54)", "expired (54)"),
    DemoCard("6217000000000000046", "3012", "挂失卡 (41)", "lost (41)"),
    DemoCard("6217000000000000053", "3012", "被窃卡 (43)", "stolen (43)"),
    DemoCard("6217000000000000061", "3012", "受限卡 (62)", "restricted (62)"),
    DemoCard("6217000000000000079", "3012", "单笔限额500 (61)", "500.00 per txn (61)"),
)

DEMO_PIN = "123456"
DEMO_OPERATORS = {"99": ("sysadmin", "12345678"), "00": ("supervisor", "123456"), "01": ("operator", "0000"),
                  "02": ("operator", "0000")}  # fmt: skip


def make_card(
    demo: DemoCard, entry: str, pin: str = "", amount: int = 0, when: datetime | None = None, journal: Any = None
) -> Card:
    """What the reader hands over for a demo card (:func:`posgate.terminal.cards.read_card`); a
    simulated chip card's ATC comes from ``journal`` when there is one (it goes up across runs)."""
    import os

    from posgate.terminal.cards import chip_key, read_card

    atc = journal.next_atc(demo.pan) if journal is not None and entry in ("insert", "tap") and chip_key(demo.pan) else None
    return read_card(demo.pan, entry, pin=pin, amount=amount, when=when or datetime.now(ZoneInfo("Asia/Shanghai")),
                     randbytes=os.urandom, expiry=demo.expiry, atc=atc)  # fmt: skip


# ============================================================================ backends


@dataclass(frozen=True, slots=True)
class Status:
    signed_on: bool = False
    batch: str = "000001"
    stan: str = "000000"
    reversal: int = 0
    offline: int = 0
    unsigned: int = 0
    address: str = ""
    operator: str = "01"


class PosBackend(Protocol):
    """What the TUI needs from a terminal."""

    address: str

    @property
    def state(self) -> TerminalState: ...

    async def run(self, inp: Input) -> Result: ...

    def verify_operator(self, code: str, password: str, role: str | None = None) -> str:
        """ "" when the password is right (and the operator has ``role``), else why not."""
        ...

    def role_of(self, code: str) -> str | None:
        """The operator's role (sysadmin, supervisor, operator), None when there is no such one."""
        ...

    def sign_in(self, code: str) -> None:
        """Operator sign-in (操作员签到) done: later transactions carry ``code``."""
        ...

    async def close(self) -> None: ...


def status_of(backend: PosBackend, now: datetime | None = None) -> Status:
    """The status line's facts; "today" is the backend's clock's when it has one."""
    state = backend.state
    zone = ZoneInfo(state.config.timezone)
    clock = getattr(backend, "clock", None)
    now = now or (clock() if callable(clock) else datetime.now(zone))
    today = now.astimezone(zone).date().isoformat() if now.tzinfo else now.date().isoformat()
    return Status(
        signed_on=state.keys is not None and state.signed_on_date == today and not state.sign_on_owed,
        batch=state.batch,
        stan=f"{state.stan:06d}",
        reversal=1 if state.reversal is not None else 0,
        offline=sum(1 for t in state.txns if t.status == "offline_pending"),
        unsigned=sum(1 for t in state.txns if t.signature in ("unsigned", "pending")),
        address=backend.address,
    )


class ClientBackend:
    """The real terminal: a :class:`posgate.terminal.client.TerminalSession` (TCP to a host)
    and its journal (operators and their passwords, the batch log)."""

    def __init__(self, session: Any, address: str | None = None) -> None:
        self.session = session
        ep = getattr(session, "endpoint", None)
        self.address = address or (f"{ep.host}:{ep.port}" if ep is not None else "")

    def clock(self) -> datetime:
        return self.session.clock()

    def verify_operator(self, code: str, password: str, role: str | None = None) -> str:
        from posgate.terminal.client import utc_now
        from posgate.terminal.journal import OperatorError

        journal = getattr(self.session, "journal", None)
        if journal is None:
            return _check_demo_operator(code, password, role)
        try:
            journal.verify_operator(code, password, utc_now(), role=role)
        except OperatorError as e:
            return str(e)
        return ""

    def role_of(self, code: str) -> str | None:
        journal = getattr(self.session, "journal", None)
        if journal is None:
            return DEMO_OPERATORS.get(code, (None,))[0]
        op = journal.operator(code)
        return op.role if op is not None else None

    def sign_in(self, code: str) -> None:
        journal = getattr(self.session, "journal", None)
        if journal is not None:
            journal.put("operator", code)  # as `posgate terminal operator signin` does

    @property
    def state(self) -> TerminalState:
        return self.session.state

    async def run(self, inp: Input) -> Result:
        return await self.session.run(inp)

    async def close(self) -> None:
        await self.session.close()
        journal = getattr(self.session, "journal", None)
        if journal is not None:
            journal.close()


def _check_demo_operator(code: str, password: str, role: str | None) -> str:
    known = DEMO_OPERATORS.get(code)
    if known is None:
        return f"无此操作员 / no operator {code}"
    if role is not None and known[0] != role:
        return f"操作员 {code} 无此权限 / operator {code} is not a {role}"
    return "" if password == known[1] else "密码错误 / wrong password"


_STUB_DECLINES = {
    "6288000000000000037": "51",  # demo payment codes (docs/decisions.md Q3)
    "6288000000000000045": "54",
    "6217000000000000038": "54",
    "6217000000000000046": "41",
    "6217000000000000053": "43",
    "6217000000000000061": "62",
}


class StubBackend:
    """An in-memory terminal that a pretend host approves (demo card rules), with no network.

    It keeps a real :class:`TerminalState` (batch log, STAN, signatures), so void, reprint,
    make-up signatures and settlement totals behave as with a host.
    """

    address = "stub (no host)"

    def __init__(self, state: TerminalState | None = None, *, clock: Callable[[], datetime] | None = None,
                 delay: float = 0.0) -> None:  # fmt: skip
        from posgate.terminal.state import TerminalState

        self._state = state or TerminalState()
        self.clock = clock or (lambda: datetime.now(ZoneInfo(self._state.config.timezone)))
        self.delay = delay
        self.inputs: list[Input] = []
        self._rrn = 0
        self._failed: dict[str, int] = {}
        self._locked: dict[str, datetime] = {}

    @property
    def state(self) -> TerminalState:
        return self._state

    async def close(self) -> None:
        return None

    def verify_operator(self, code: str, password: str, role: str | None = None) -> str:
        """The demo operators, with the journal's lockout rule: three wrong passwords in a row
        lock the operator for ten minutes (by the stub's clock), the right one resets the count."""
        from datetime import timedelta

        from posgate.terminal.journal import DEFAULT_LOCKOUT_MINUTES, MAX_FAILED_SIGNINS

        now = self.clock()
        until = self._locked.get(code)
        if until is not None and until > now:
            return f"操作员已锁定，请于 {until:%H:%M:%S} 后重试 / operator {code} is locked until {until:%H:%M:%S}"
        problem = _check_demo_operator(code, password, role)
        if problem.startswith("密码错误"):
            failed = self._failed.get(code, 0) + 1
            if failed >= MAX_FAILED_SIGNINS:
                self._failed[code] = 0
                self._locked[code] = now + timedelta(minutes=DEFAULT_LOCKOUT_MINUTES)
                return f"密码错误次数过多，操作员已锁定 / too many wrong passwords: operator {code} locked"
            self._failed[code] = failed
            return f"密码错 / wrong password for operator {code} ({MAX_FAILED_SIGNINS - failed} tries left)"
        if not problem:
            self._failed.pop(code, None)
            self._locked.pop(code, None)
        return problem

    def role_of(self, code: str) -> str | None:
        return DEMO_OPERATORS.get(code, (None,))[0]

    def sign_in(self, code: str) -> None:
        return None

    def _next_stan(self) -> str:
        from posgate.terminal.state import next_stan

        self._state, stan = next_stan(self._state)
        return stan

    async def run(self, inp: Input) -> Result:
        from posgate.terminal.operations.base import Result, TerminalError
        from posgate.terminal.state import TxnEntry, next_batch

        self.inputs.append(inp)
        if self.delay:
            await asyncio.sleep(self.delay)
        now = self.clock()
        s = self._state
        name = inp.operation

        def answer(code: str, **kw: Any) -> Result:
            rc = describe(code)
            return Result(name, approved=code == "00", response_code=code, message_zh=rc.zh, message_en=rc.en,
                          batch=s.batch, date=now.strftime("%m%d"), time=now.strftime("%H%M%S"), **kw)  # fmt: skip

        if name == "sign_on":
            from posgate.crypto import WorkingKeys

            keys = WorkingKeys(pik=bytes(16), mak=bytes(8))
            self._state = replace(
                s, keys=keys, signed_on_date=now.date().isoformat(), sign_on_owed="", key_scheme="004"
            )
            self._next_stan()
            return answer("00")
        if name == "sign_off":
            self._state = replace(s, keys=None, signed_on_date="")
            self._next_stan()
            return answer("00")
        if name in ("echo", "parameter_download", "status_upload", "ic_download"):
            self._next_stan()
            return answer("00")
        if s.keys is None or s.signed_on_date != now.date().isoformat():
            # As the real core does: a make-up sign-on before the first transaction of the day.
            from posgate.crypto import WorkingKeys

            self._next_stan()
            s = self._state = replace(self._state, keys=WorkingKeys(pik=bytes(16), mak=bytes(8)),
                                      signed_on_date=now.date().isoformat(), key_scheme="004")  # fmt: skip
        if name == "signature":
            t = s.txn(inp.voucher.zfill(6), s.batch)
            if t is None:
                raise TerminalError("原交易不存在 / no such transaction")
            self._state = s.with_txn(replace(t, signature="uploaded"))
            return answer("00", stan=t.stan, amount=t.amount)
        if name == "settlement":
            from posgate.terminal.operations.settlement import totals, totals_dict

            stan, new_batch = self._next_stan(), next_batch(s.batch)
            slip: dict[str, Any] = {"settled_batch": s.batch, "new_batch": new_batch, "domestic_result": "1",
                    "foreign_result": "1", "totals": totals_dict(totals(s)), "stan": stan,
                    "settled_at": now.replace(microsecond=0).isoformat(),
                    "unsigned": [t.stan for t in s.txns if t.signature in ("unsigned", "pending")]}  # fmt: skip
            self._state = replace(self._state, txns=(), signatures={}, batch=new_batch, last_settlement=slip)
            return replace(answer("00", stan=stan), settlement=slip)
        card = inp.card
        original: TxnEntry | None = None
        if name in ("void", "completion_void"):
            original = s.txn(inp.voucher.zfill(6), s.batch)
            if original is None or original.status != "approved":
                raise TerminalError("原交易不存在或已撤销 / no such transaction, or already voided")
        if card is None:
            raise TerminalError("请刷卡 / a card is required")
        stan = self._next_stan()
        code = _STUB_DECLINES.get(card.pan, "00")
        if card.pin and card.pin != DEMO_PIN:
            code = "55"
        amount = original.amount if original is not None and not inp.amount else inp.amount
        if code == "00" and card.pan == "6217000000000000020" and name == "sale" and amount > 1000:
            code = "51"
        if code == "00" and card.pan == "6217000000000000079" and amount > 50000:
            code = "61"
        if code == "00" and original is not None and original.pan != card.pan:
            code = "25"
        self._rrn += 1
        rrn = now.strftime("%H%M%S") + f"{self._rrn:06d}"
        if code != "00":
            return answer(code, stan=stan, amount=amount, pan_masked=mask_pan(card.pan))
        if name == "balance":
            return answer(code, stan=stan, pan_masked=mask_pan(card.pan), balance=10_000_000)
        auth = f"{self._rrn:06d}"
        qr = card.entry == "qr"  # a scanned payment code: CUP, field 22 = 032, no signature (Q1, Q4)
        org = "CUP" if card.pan.startswith("62") or qr else "VIS"
        entry = TxnEntry(stan=stan, batch=s.batch, operation=name, amount=amount, pan=card.pan, expiry=card.expiry,
                         entry_mode="032" if qr else card.entry, card_org=org, rrn=rrn, auth_code=auth, date=now.strftime("%m%d"),
                         time=now.strftime("%H%M%S"), at=now.replace(microsecond=0).isoformat(),
                         operator=inp.operator, original_stan=original.stan if original else "",
                         original_date=inp.orig_date, issuer_bank="01020000" if org == "CUP" else "",
                         acquirer_bank="00049990",
                         signature="unsigned" if name not in ("preauth_void",) and not qr else "")  # fmt: skip
        state = self._state.with_txn(entry)
        if original is not None:
            state = state.with_txn(replace(original, status="voided"))
        self._state = state
        return answer(
            "00",
            stan=stan,
            amount=amount,
            rrn=rrn,
            auth_code=auth,
            pan_masked=mask_pan(card.pan),
            card_org=org,
        )


# ============================================================================ slips


# slip_for, settlement_slip_from, parse_when: posgate.terminal.slips (shared with the CLI)


# ============================================================================ widgets


class StatusBar(Static):
    """Signed on? batch, STAN, pending reversal / offline / unsigned counts, host:port."""

    def on_mount(self) -> None:
        self.refresh_status()
        self.set_interval(1.0, self.refresh_status)

    def refresh_status(self) -> None:
        app = self.app
        if not isinstance(app, PosApp):
            return
        lang = app.lang
        try:
            st = status_of(app.backend)
        except Exception:  # noqa: BLE001 - a status line must never take the screen down
            return
        parts = [
            Text(
                word("signed_on" if st.signed_on else "signed_off", lang),
                style="bold green" if st.signed_on else "bold red",
            ),
            Text(f"{word('batch', lang)} {st.batch}"),
            Text(f"{word('stan', lang)} {st.stan}"),
            Text(f"{word('reversal', lang)} {st.reversal}", style="bold yellow" if st.reversal else ""),
            Text(f"{word('offline', lang)} {st.offline}", style="bold yellow" if st.offline else ""),
            Text(f"{word('unsigned', lang)} {st.unsigned}", style="bold yellow" if st.unsigned else ""),
            Text(f"{word('operator', lang)} {app.operator}"),
            Text(st.address),
        ]
        self.update(Text(" | ").join(parts))


class Title(Static):
    pass


class Display(Static):
    """The big line of the POS screen (amount, masked PIN ...)."""


class SignatureCanvas(Widget, can_focus=True):
    """Draw with the mouse. Strokes are kept in cell coordinates (fractional when the terminal
    reports pixels) and shown with half blocks, two dots per character cell."""

    DEFAULT_CSS = """
    SignatureCanvas { width: 1fr; height: 12; border: round $accent; background: white; color: black; }
    """
    ALLOW_SELECT = False  # a drag draws; it must not select text

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.pad = StrokesPad(scale=(8, 16), pen=6)
        self._drawing = False
        self._dots: set[tuple[int, int]] = set()  # (column, half-row)

    def render(self) -> Text:
        w, h = self.content_size.width, self.content_size.height
        glyphs = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
        lines = [
            "".join(glyphs[((x, 2 * y) in self._dots, (x, 2 * y + 1) in self._dots)] for x in range(w))
            for y in range(h)
        ]
        return Text("\n".join(lines), style="black on white")

    def _point(self, event: events.MouseEvent) -> tuple[float, float]:
        """The pointer in content coordinates (inside the border), fractional when available."""
        off = event.get_content_offset_capture(self)
        gx, gy = event.x - off.x, event.y - off.y  # the border and padding in front of the content
        return float(getattr(event, "pointer_x", event.x)) - gx, float(
            getattr(event, "pointer_y", event.y)
        ) - gy

    def _mark(self, a: tuple[float, float], b: tuple[float, float]) -> None:
        (x0, y0), (x1, y1) = a, b
        n = int(max(abs(x1 - x0), abs(y1 - y0) * 2)) + 1
        for i in range(n + 1):
            t = i / n
            self._dots.add((int(x0 + (x1 - x0) * t), int((y0 + (y1 - y0) * t) * 2)))

    def add_stroke(self, points: Sequence[tuple[float, float]]) -> None:
        """Add a whole stroke (the sample signature; tests)."""
        if not points:
            return
        self.pad.begin_stroke(*points[0])
        last = points[0]
        self._mark(last, last)
        for p in points[1:]:
            self.pad.add_point(*p)
            self._mark(last, p)
            last = p
        self.refresh()

    def clear(self) -> None:
        self.pad.clear()
        self._dots.clear()
        self.refresh()

    @property
    def empty(self) -> bool:
        return self.pad.empty

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.capture_mouse()
        self._drawing = True
        p = self._point(event)
        self.pad.begin_stroke(*p)
        self._mark(p, p)
        self.refresh()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if not self._drawing or not self.pad.strokes:
            return
        p = self._point(event)
        last = self.pad.strokes[-1][-1]
        if p == last:
            return
        self.pad.add_point(*p)
        self._mark(last, p)
        self.refresh()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._drawing:
            self._drawing = False
            self.release_mouse()


# ============================================================================ screens


class PosScreen(Screen[Any]):
    """A screen with the title line on top and the status line at the bottom."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Back", show=False)]
    title_key = "app_title"
    _answered = False

    def answer(self, value: Any = None) -> None:
        """Dismiss with ``value`` once: a key and a button may both ask to close the screen."""
        if not self._answered:
            self._answered = True
            self.dismiss(value)

    @property
    def pos(self) -> PosApp:
        app = self.app
        assert isinstance(app, PosApp)
        return app

    @property
    def lang(self) -> str:
        return self.pos.lang

    def w(self, key: str) -> str:
        return word(key, self.lang)

    def compose(self) -> ComposeResult:
        yield Title(self.w(self.title_key), id="title")
        with Vertical(id="footer"):
            yield Static(self.w("keys_help"), id="help")
            yield StatusBar(id="status")
        with Vertical(id="body"):
            yield from self.body()

    def body(self) -> ComposeResult:
        yield from ()

    def action_cancel(self) -> None:
        self.answer(None)

    def say(self, text: str) -> str:
        """A prompt given as a key of WORDS is said in the current language — also after F2
        on this very screen (a prompt built as text would stay in the language it was built in)."""
        return self.w(text) if text in WORDS else text

    def button_has_focus(self) -> bool:
        """A focused button owns Enter (its own binding presses it): a screen's Enter shortcut
        (OK, next copy, submit) must not take the key from Save PDF, Cancel, Done."""
        return isinstance(self.focused, Button)


SLIP_OPERATIONS = frozenset({"sale", "void", "refund", "preauth", "preauth_void", "completion", "completion_void",
                             "offline_settlement", "settlement_adjust", "tip_adjust", "completion_advice"})  # fmt: skip

MENU: tuple[tuple[str, str], ...] = (
    ("1", "sale"), ("2", "void"), ("3", "refund"), ("4", "balance"), ("5", "preauth_menu"),
    ("6", "settlement"), ("7", "sign_on"), ("8", "sign_off"), ("9", "reprint"), ("0", "admin"),
)  # fmt: skip


class MenuScreen(PosScreen):
    """The main menu: a digit or a click starts an operation."""

    title_key = "menu"

    def body(self) -> ComposeResult:
        with Grid(id="menu"):
            for digit, key in MENU:
                yield Button(f"{digit} {self.w(key)}", id=f"menu-{key}")

    def on_key(self, event: events.Key) -> None:
        for digit, key in MENU:
            if event.character == digit:
                event.stop()
                self.pos.start_flow(key)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id and event.button.id.startswith("menu-"):
            self.pos.start_flow(event.button.id.removeprefix("menu-"))

    def action_cancel(self) -> None:
        pass  # the main menu has nowhere to go back to


KEYPAD = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "back")


class EntryScreen(PosScreen):
    """Keypad entry. ``mode``: ``amount`` (digits shift in as fen: 1 2 3 4 → 12.34), ``digits``
    (shown as typed) or ``secret`` (shown as ``*``). Dismisses with the text (amount: fen as
    str) or None."""

    def __init__(self, prompt: str, mode: str = "digits", *, max_len: int = 12, min_len: int = 1,
                 hint: str = "", allow_empty: bool = False, cancellable: bool = True,
                 title_key: str = "") -> None:  # fmt: skip
        super().__init__()
        self.prompt, self.mode, self.max_len, self.min_len = prompt, mode, max_len, min_len
        self.hint, self.allow_empty, self.cancellable = hint, allow_empty, cancellable
        self.title_key = title_key or self.title_key
        self.value = ""

    def action_cancel(self) -> None:
        if self.cancellable:  # the operator sign-in cannot be escaped: there is nothing behind it
            self.answer(None)

    def body(self) -> ComposeResult:
        yield Static(self.say(self.prompt), id="prompt")
        yield Display(self.shown(), id="display")
        yield Static(self.say(self.hint), id="hint")
        with Horizontal(id="entry-row"):
            with Grid(id="keypad"):
                for k in KEYPAD:
                    label = {"clear": self.w("clear"), "back": "←"}.get(k, k)
                    key = Button(label, id=f"key-{k}", classes="key")
                    key.can_focus = False  # clicked, never focused: Enter stays with OK / Cancel
                    yield key
            with Vertical(id="entry-actions"):
                yield Button(self.w("confirm"), id="enter", variant="success")
                if self.cancellable:
                    yield Button(self.w("cancel"), id="cancel", variant="error")

    def on_mount(self) -> None:
        self.query_one("#enter", Button).focus()

    def shown(self) -> str:
        if self.mode == "amount":
            return "RMB " + fen_to_yuan(int(self.value or "0"))
        if self.mode == "secret":
            return "*" * len(self.value) or "_"
        return self.value or "_"

    def _refresh(self) -> None:
        self.query_one("#display", Display).update(self.shown())

    def type_key(self, key: str) -> None:
        if key.isdigit() and len(key) == 1:
            if len(self.value) < self.max_len and not (
                self.mode == "amount" and not self.value and key == "0"
            ):
                self.value += key
        elif key in ("back", "backspace"):
            self.value = self.value[:-1]
        elif key == "clear":
            self.value = ""
        elif key == "enter":
            self.submit()
            return
        self._refresh()

    def submit(self) -> None:
        if not self.value and self.allow_empty:
            self.answer("")
            return
        if len(self.value) < self.min_len or (self.mode == "amount" and int(self.value or "0") <= 0):
            self.query_one("#hint", Static).update(Text(self.say(self.hint) or "?", style="bold red"))
            return
        self.answer(self.value)

    def on_paste(self, event: events.Paste) -> None:
        """A pasted payment code or number: its digits, as if typed."""
        event.stop()
        for ch in event.text:
            if ch.isdigit():
                self.type_key(ch)

    def on_key(self, event: events.Key) -> None:
        if event.key == "enter" and self.button_has_focus():
            return  # Enter presses the focused button (Cancel is not OK)
        if event.key in ("enter", "backspace", "delete") or (event.character or "").isdigit():
            event.stop()
            self.type_key(
                {"delete": "clear"}.get(
                    event.key,
                    event.key if not event.character or not event.character.isdigit() else event.character,
                )
            )

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        if bid.startswith("key-"):
            self.type_key(bid.removeprefix("key-"))
        elif bid == "enter":
            self.submit()
        elif bid == "cancel":
            self.answer(None)


class ChoiceScreen(PosScreen):
    """A list to choose from (a sub-menu); dismisses with the chosen key or None."""

    def __init__(self, prompt: str, choices: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.prompt = prompt
        self.choices = list(choices)

    def body(self) -> ComposeResult:
        yield Static(self.say(self.prompt), id="prompt")
        yield OptionList(
            *[
                Option(f"{i + 1} {self.say(key) if key in WORDS else text}", id=key)
                for i, (key, text) in enumerate(self.choices)
            ],
            id="choices",
        )
        yield Button(self.w("cancel"), id="cancel", variant="error")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_key(self, event: events.Key) -> None:
        ch = event.character or ""
        if ch.isdigit() and 1 <= int(ch) <= len(self.choices):
            event.stop()
            self.answer(self.choices[int(ch) - 1][0])

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.answer(event.option.id)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.answer(None)


class CardScreen(PosScreen):
    """Present a card: pick a demo card, then swipe, insert, tap or key it in. Dismisses with
    ``(DemoCard, entry mode)`` or None."""

    def __init__(self, prompt: str = "") -> None:
        super().__init__()
        self.prompt = prompt

    def body(self) -> ComposeResult:
        yield Static(self.prompt or self.w("present_card"), id="prompt")
        yield Static(self.w("choose_card"), id="hint")
        yield OptionList(*[Option(c.label(self.lang), id=c.pan) for c in DEMO_CARDS], id="cards")
        with Horizontal(id="card-actions"):
            for mode in ("swipe", "insert", "tap", "manual"):
                yield Button(self.w(mode), id=f"entry-{mode}", variant="primary")
            yield Button(self.w("qr"), id="entry-qr", variant="warning")  # 扫码: the customer's payment code
            yield Button(self.w("cancel"), id="cancel", variant="error")

    def on_mount(self) -> None:
        cards = self.query_one("#cards", OptionList)
        cards.highlighted = 0
        cards.focus()

    def selected(self) -> DemoCard:
        index = self.query_one("#cards", OptionList).highlighted or 0
        return DEMO_CARDS[index]

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        card = self.selected()
        self.answer((card, "insert" if card.chip else "swipe"))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id or ""
        if bid.startswith("entry-"):
            self.answer((self.selected(), bid.removeprefix("entry-")))
        elif bid == "cancel":
            self.answer(None)


class MessageScreen(PosScreen):
    """A message (result, error, information). OK or Enter answers True, Escape None, so a
    message can double as a confirmation."""

    def __init__(self, heading: str, lines: Sequence[str] = (), *, ok: bool = True) -> None:
        super().__init__()
        self.heading, self.lines, self.ok = heading, list(lines), ok

    def body(self) -> ComposeResult:
        yield Static(Text(self.heading, style="bold green" if self.ok else "bold red"), id="heading")
        yield Static("\n".join(self.lines), id="message")
        yield Button(self.w("confirm"), id="ok", variant="success")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        self.answer(True)

    def on_key(self, event: events.Key) -> None:
        if event.key == "enter" and not self.button_has_focus():
            event.stop()
            self.answer(True)


class ProcessingScreen(PosScreen):
    """Shown while the request is with the host; the flow pops it."""

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def body(self) -> ComposeResult:
        yield Static(Text(self.text, style="bold"), id="processing")

    def action_cancel(self) -> None:
        pass  # the request has left: only the core decides what happens now


class SignatureScreen(PosScreen):
    """The cardholder signs with the mouse. Dismisses with a :class:`SignatureImage` or None (skip)."""

    title_key = "sign_here"

    def __init__(self, summary: str = "") -> None:
        super().__init__()
        self.summary = summary

    def body(self) -> ComposeResult:
        yield Static(self.summary, id="prompt")
        yield Static(self.w("sign_hint"), id="hint")
        yield SignatureCanvas(id="canvas")
        with Horizontal(id="sig-actions"):
            yield Button(self.w("confirm"), id="sig-ok", variant="success")
            yield Button(self.w("clear"), id="sig-clear", variant="warning")
            yield Button(self.w("sample"), id="sig-sample")
            yield Button(self.w("skip"), id="sig-skip", variant="error")

    @property
    def canvas(self) -> SignatureCanvas:
        return self.query_one(SignatureCanvas)

    def draw_sample(self) -> None:
        w = max(20, self.canvas.content_size.width - 4)
        h = max(6, self.canvas.content_size.height - 2)
        self.canvas.add_stroke(
            [(2, h * 0.7), (w * 0.15, 1), (w * 0.25, h * 0.8), (w * 0.35, h * 0.2), (w * 0.45, h * 0.9)]
        )
        self.canvas.add_stroke(
            [(w * 0.55, h * 0.3), (w * 0.7, h * 0.3), (w * 0.62, 1), (w * 0.62, h), (w * 0.95, h * 0.5)]
        )

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id
        if bid == "sig-clear":
            self.canvas.clear()
        elif bid == "sig-sample":
            self.draw_sample()
        elif bid == "sig-skip":
            self.answer(None)
        elif bid == "sig-ok":
            self.confirm()

    def confirm(self) -> None:
        if self.canvas.empty:
            self.query_one("#hint", Static).update(Text(self.w("blank_sig"), style="bold red"))
            return
        try:
            sig = encode_for_field62(self.canvas.pad.capture())
        except SignatureError as e:
            self.query_one("#hint", Static).update(Text(str(e), style="bold red"))
            return
        self.answer(sig)

    def action_cancel(self) -> None:
        self.answer(None)


class SlipScreen(PosScreen):
    """The printed slip on screen (merchant copy first). Dismisses when done."""

    def __init__(self, slips: Sequence[Slip] | None = None, settlement: SettlementSlip | None = None) -> None:
        super().__init__()
        self.slips = list(slips or [])
        self.settlement = settlement
        self.index = 0

    def text(self) -> str:
        if self.settlement is not None:
            return render_settlement_text(self.settlement, lang=self.lang)
        return render_text(self.slips[self.index], lang=self.lang)

    def body(self) -> ComposeResult:
        with VerticalScroll(id="paper-scroll"):
            yield Static(Text(self.text(), no_wrap=True, overflow="crop"), id="paper")
        with Horizontal(id="slip-actions"):
            if self.index + 1 < len(self.slips):
                yield Button(self.w("next_copy"), id="slip-next", variant="primary")
            yield Button(self.w("save_pdf"), id="slip-pdf")
            yield Button(self.w("done"), id="slip-done", variant="success")

    def on_mount(self) -> None:
        self.focus_default()

    def focus_default(self) -> None:
        """Enter on the default button does what Enter always did: next copy, else done."""
        for bid in ("#slip-next", "#slip-done"):
            found = self.query(bid)
            if found:
                found.first(Button).focus()
                return

    async def next_copy(self) -> None:
        if self.index + 1 < len(self.slips):
            self.index += 1
            await self.recompose()
            self.focus_default()
        else:
            self.answer(None)

    def save_pdf(self) -> Path:
        from posgate.receipt import render_pdf, render_settlement_pdf

        out_dir = self.pos.slip_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.settlement is not None:
            path = out_dir / f"settlement-{self.settlement.terminal_id}-{self.settlement.batch_no}.pdf"
            path.write_bytes(render_settlement_pdf(self.settlement, self.lang))
        else:
            first = self.slips[0]
            path = out_dir / f"slip-{first.terminal_id}-{first.batch_no}-{first.stan}.pdf"
            path.write_bytes(render_pdf(self.slips, self.lang))
        self.notify(f"{self.w('saved')}: {path}")
        return path

    @on(Button.Pressed)
    async def _pressed(self, event: Button.Pressed) -> None:
        bid = event.button.id
        if bid == "slip-next":
            await self.next_copy()
        elif bid == "slip-pdf":
            self.save_pdf()
        elif bid == "slip-done":
            self.answer(None)

    async def on_key(self, event: events.Key) -> None:
        if event.key == "enter" and not self.button_has_focus():
            event.stop()
            await self.next_copy()


# ============================================================================ the app


class PosApp(App[None]):
    """The POS emulator. ``backend`` does the work; the app walks the cashier through it."""

    CSS_PATH = "tui.tcss"
    TITLE = "posgate POS"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "toggle_lang", "中/EN"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, backend: PosBackend, *, lang: str = "zh", operator: str = "01",
                 slip_dir: Path | None = None, merchant_name_en: str = "", login: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.backend = backend
        self.lang = "en" if lang.lower().startswith("en") else "zh"
        # With ``login`` (the default, and always from the command line) nobody is signed in
        # until an operator gives number and password (操作员签到); ``operator`` is then only the
        # number offered first. Without it (tests of other screens) ``operator`` is signed in.
        self.login = login
        self.operator = "--" if login else operator
        self.suggested_operator = operator if operator.isdigit() and len(operator) == 2 else ""
        self.slip_dir = slip_dir or Path.cwd() / "slips"
        self.merchant_name_en = merchant_name_en
        self.signatures: dict[tuple[str, str], bytes] = {}  # (batch, STAN) -> PNG captured here
        self.make_ups: set[tuple[str, str]] = set()
        self.last_slip: tuple[str, str] | None = None
        self.results: list[Result] = []  # every result, newest last (for tests and scripting)

    def w(self, key: str) -> str:
        return word(key, self.lang)

    def on_mount(self) -> None:
        self.push_screen(MenuScreen())
        if self.login:
            self.start_flow("login")

    async def on_unmount(self) -> None:
        await self.backend.close()

    async def action_toggle_lang(self) -> None:
        self.lang = "en" if self.lang == "zh" else "zh"
        await self.screen.recompose()

    # ------------------------------------------------------------------ helpers for flows
    async def ask(self, screen: Screen[Any]) -> Any:
        return await self.push_screen_wait(screen)

    async def tell(self, heading: str, *lines: str, ok: bool = True) -> bool:
        """Show a message; True when confirmed (OK / Enter), False when escaped."""
        return bool(await self.ask(MessageScreen(heading, lines, ok=ok)))

    async def password(self, operator: str, prompt_key: str, role: str | None = None) -> bool:
        pwd = await self.ask(EntryScreen(prompt_key, "secret", max_len=8, min_len=4))
        if pwd is None:
            return False
        problem = self.backend.verify_operator(operator, pwd, role)
        if problem:
            await self.tell(self.w("wrong_pwd"), problem, ok=False)
            return False
        return True

    async def card_and_pin(self, *, pin: bool = True, amount: int = 0) -> Card | None:
        chosen = await self.ask(CardScreen())
        if chosen is None:
            return None
        demo, entry = chosen
        if entry == "qr":  # 扫码: scanned (a scanner types like a keyboard) or typed / pasted
            from posgate.terminal.cards import read_qr

            scanned = await self.ask(EntryScreen(self.w("scan_code"), "digits", max_len=24, min_len=16))
            if scanned is None:
                return None
            try:
                return read_qr(scanned)
            except ValueError as e:
                await self.tell(self.w("bad_code"), str(e), ok=False)
                return None
        if entry == "manual":  # 手输卡号: the cashier keys in the card number and expiry
            pan = await self.ask(EntryScreen("enter_pan", "digits", max_len=19, min_len=13))
            if pan is None:
                return None
            expiry = await self.ask(EntryScreen("enter_expiry", "digits", max_len=4, min_len=4))
            if expiry is None:
                return None
            demo = DemoCard(pan, expiry, "", "")
        code = ""
        if pin:
            code = await self.ask(
                EntryScreen(
                    "enter_pin",
                    "secret",
                    max_len=12,
                    min_len=4,
                    hint="pin_skip",
                    allow_empty=True,
                )
            )
            if code is None:
                return None
        journal = getattr(getattr(self.backend, "session", None), "journal", None)
        return make_card(demo, entry, code, amount, journal=journal)

    async def process(self, inp: Input) -> Result | None:
        """Run one operation with the processing screen up; TerminalError becomes a message."""
        from posgate.terminal.operations.base import TerminalError

        await self.push_screen(ProcessingScreen(self.w("processing")))
        try:
            result = await self.backend.run(inp)
        except TerminalError as e:
            # Refused by the terminal itself: nothing went to the host, nothing was declined.
            await self.pop_screen()
            await self.tell(outcome_title("refused", self.lang), str(e), ok=False)
            return None
        await self.pop_screen()
        self.results.append(result)
        for bar in self.screen.query(StatusBar):
            bar.refresh_status()
        return result

    async def show_result(self, result: Result) -> None:
        """The result screen: its title follows the outcome (approved / declined / no answer /
        failed), and a reversal is mentioned only when the terminal still owes one
        (:mod:`posgate.terminal.outcome`), with its voucher number."""
        seen = outcome(result, self.backend.state, self.lang)
        lines = [f"{result.response_code}  {seen.message}".strip()]
        if result.action_worth_showing:  # what to do next (call the acquirer, another card...)
            lines.append(result.action_zh if self.lang == "zh" else result.action_en or result.action_zh)
        if result.amount:
            lines.append(f"RMB {fen_to_yuan(result.amount)}")
        if result.pan_masked:
            lines.append(result.pan_masked)
        if result.balance is not None:
            lines.append(f"{self.w('balance_is')}: RMB {fen_to_yuan(result.balance)}")
        if result.stan:
            lines.append(f"{word('stan', self.lang)} {result.stan}  {result.rrn}")
        lines += list(seen.notices)
        await self.tell(seen.title(self.lang), *lines, ok=result.approved)

    def entry(self, stan: str, batch: str | None = None) -> TxnEntry | None:
        state = self.backend.state
        return state.txn(stan.zfill(6), batch or state.batch)

    async def capture_signature(self, entry: TxnEntry, *, make_up: bool = False) -> None:
        """Ask for the signature of an approved transaction and upload it (or leave it unsigned)."""
        from posgate.terminal.operations.base import Input

        summary = f"{entry.pan and mask_pan(entry.pan)}  RMB {fen_to_yuan(entry.amount)}"
        sig: SignatureImage | None = await self.ask(SignatureScreen(summary))
        if sig is None:
            if not make_up:
                self.notify(self.w("unsigned_left"), severity="warning")
            return
        key = (entry.batch, entry.stan)
        self.signatures[key] = sig.to_png()
        if make_up:
            self.make_ups.add(key)
        result = await self.process(
            Input("signature", voucher=entry.stan, signature=sig.jbig, operator=self.operator)
        )
        if result is not None and result.approved:
            self.notify(self.w("uploaded_sig"))
        elif result is not None:
            self.notify(result.message, severity="warning")

    async def print_slips(self, entry: TxnEntry, *, reprint: bool = False) -> None:
        state = self.backend.state
        entry = state.txn(entry.stan, entry.batch) or entry
        key = (entry.batch, entry.stan)
        base = slip_for(state, entry, signature_png=self.signatures.get(key), make_up=key in self.make_ups,
                        reprint=reprint, merchant_name_en=self.merchant_name_en)  # fmt: skip
        self.last_slip = key
        await self.ask(SlipScreen(base.copies()))

    # ------------------------------------------------------------------ flows
    def start_flow(self, name: str) -> None:
        flow = getattr(self, f"flow_{name}", None)
        if flow is not None:
            self.run_worker(flow(), exclusive=True, group="flow", name=name)

    async def _financial(self, inp: Input) -> None:
        """Process, show the result, and for an approved slip-bearing transaction: sign and print."""
        result = await self.process(inp)
        if result is None:
            return
        await self.show_result(result)
        while result.error == "pending" and result.stan:  # a QR payment waiting for the password (Q2)
            waiting = result.stan
            if not await self.tell(self.w("qr_wait"), self.w("qr_query_now")):
                return
            from posgate.terminal.operations.base import Input as Request

            queried = await self.process(Request("qr_query", voucher=waiting, operator=self.operator))
            if queried is None:
                return
            await self.show_result(queried)
            if queried.error == "pending":
                continue
            result = replace(queried, stan=waiting) if queried.approved else queried
        if not result.approved or not result.stan:
            return
        entry = self.entry(result.stan)
        if entry is None:
            return
        if entry.signature in ("unsigned", "pending"):
            await self.capture_signature(entry)
        await self.print_slips(entry)

    async def flow_login(self) -> None:
        """Operator sign-in (操作员签到): number and password, checked by the terminal's operator
        register — wrong passwords count, three in a row lock the operator for a while (the
        journal's rule, the same as the CLI's). It cannot be escaped; it repeats until an
        operator (a cashier or the supervisor, not the system administrator) is in."""
        while True:
            ask_code = EntryScreen("enter_operator", "digits", max_len=2, min_len=2, cancellable=False,
                                   title_key="login")  # fmt: skip
            ask_code.value = self.suggested_operator if self.operator == "--" else ""
            code = await self.ask(ask_code)
            pwd = await self.ask(EntryScreen(f"{self.w('enter_op_pwd')} ({code})", "secret", max_len=8, min_len=4,
                                             cancellable=False, title_key="login"))  # fmt: skip
            problem = self.backend.verify_operator(code, pwd)
            if not problem and self.backend.role_of(code) == "sysadmin":
                problem = self.w("admin_no_trade")
            if problem:
                await self.tell(self.w("login_failed"), problem, ok=False)
                continue
            self.operator = code
            self.backend.sign_in(code)
            self.notify(f"{self.w('welcome')}: {code}")
            for bar in self.screen.query(StatusBar):
                bar.refresh_status()
            return

    async def flow_sale(self) -> None:
        from posgate.terminal.operations.base import Input

        amount = await self.ask(EntryScreen("enter_amount", "amount", max_len=12))
        if amount is None:
            return
        card = await self.card_and_pin(amount=int(amount))
        if card is None:
            return
        await self._financial(Input("sale", amount=int(amount), card=card, operator=self.operator))

    async def flow_void(self, operation: str = "void") -> None:
        from posgate.terminal.operations.base import Input

        if not await self.password("00", "supervisor_pwd", "supervisor"):
            return
        voucher = await self.ask(EntryScreen("enter_voucher", "digits", max_len=6))
        if voucher is None:
            return
        original = self.entry(voucher)
        if original is None:
            await self.tell(self.w("no_txn"), voucher.zfill(6), ok=False)
            return
        kind = word(original.operation, self.lang) if original.operation in WORDS else original.operation
        if not await self.tell(self.w("original"), f"{original.stan}  {kind}", mask_pan(original.pan),
                               f"RMB {fen_to_yuan(original.amount)}"):  # fmt: skip
            return
        card = await self.card_and_pin(pin=operation == "completion_void", amount=original.amount)
        if card is None:
            return
        await self._financial(Input(operation, amount=original.amount, card=card, voucher=original.stan,
                                    auth_code=original.auth_code, orig_date=original.date, operator=self.operator))  # fmt: skip

    async def flow_refund(self) -> None:
        from posgate.terminal.operations.base import Input

        if not await self.password("00", "supervisor_pwd", "supervisor"):
            return
        rrn = await self.ask(EntryScreen("enter_rrn", "digits", max_len=12, min_len=12))
        if rrn is None:
            return
        date = await self.ask(EntryScreen("enter_date", "digits", max_len=4, min_len=4))
        if date is None:
            return
        amount = await self.ask(EntryScreen("enter_amount", "amount"))
        if amount is None:
            return
        card = await self.card_and_pin(pin=False, amount=int(amount))
        if card is None:
            return
        await self._financial(
            Input("refund", amount=int(amount), card=card, rrn=rrn, orig_date=date, operator=self.operator)
        )

    async def flow_balance(self) -> None:
        from posgate.terminal.operations.base import Input

        card = await self.card_and_pin()
        if card is None:
            return
        result = await self.process(Input("balance", card=card, operator=self.operator))
        if result is not None:
            await self.show_result(result)

    async def flow_preauth_menu(self) -> None:
        from posgate.terminal.operations.base import Input

        keys = ("preauth", "preauth_void", "completion", "completion_void")
        choice = await self.ask(ChoiceScreen("preauth_menu", [(k, self.w(k)) for k in keys]))
        if choice is None:
            return
        if choice == "completion_void":
            await self.flow_void("completion_void")
            return
        if choice == "preauth_void" and not await self.password("00", "supervisor_pwd", "supervisor"):
            return
        auth = date = ""
        if choice != "preauth":
            auth = await self.ask(EntryScreen("enter_auth", "digits", max_len=6, min_len=6))
            if auth is None:
                return
            date = await self.ask(EntryScreen("enter_date", "digits", max_len=4, min_len=4))
            if date is None:
                return
        amount = await self.ask(EntryScreen("enter_amount", "amount"))
        if amount is None:
            return
        card = await self.card_and_pin(pin=choice != "preauth_void", amount=int(amount))
        if card is None:
            return
        await self._financial(
            Input(
                choice, amount=int(amount), card=card, auth_code=auth, orig_date=date, operator=self.operator
            )
        )

    async def flow_settlement(self) -> None:
        from posgate.terminal.operations.base import Input

        if not await self.password("00", "supervisor_pwd", "supervisor"):
            return
        if not await self.tell(self.w("settlement"), self.w("confirm_settle")):
            return
        result = await self.process(Input("settlement", operator=self.operator))
        if result is None:
            return
        if result.settlement is None:
            await self.show_result(result)
            return
        slip = settlement_slip_from(result.settlement, self.backend.state, self.operator,
                                    merchant_name_en=self.merchant_name_en)  # fmt: skip
        await self.ask(SlipScreen(settlement=slip))
        # What the slip does not say: transactions settled unsigned, an incomplete batch upload,
        # the notices of the way (signature uploads, advices) — the cashier must see them too.
        info = result.settlement
        seen = outcome(result, self.backend.state, self.lang)
        extra = [*seen.notices]
        if info.get("unsigned"):
            extra.append(f"{self.w('unsigned_settled')}: {', '.join(info['unsigned'])}")
        if not info.get("batch_upload_complete", True):
            extra.append(self.w("upload_incomplete"))
        if extra:
            await self.tell(seen.title(self.lang), seen.message, *extra, ok=True)

    async def flow_sign_on(self) -> None:
        from posgate.terminal.operations.base import Input

        result = await self.process(Input("sign_on", operator=self.operator))
        if result is not None:
            await self.show_result(result)

    async def flow_sign_off(self) -> None:
        from posgate.terminal.operations.base import Input

        result = await self.process(Input("sign_off", operator=self.operator))
        if result is not None:
            await self.show_result(result)
            if result.approved and self.login:  # signed off: the next operator signs in
                self.operator = "--"
                await self.flow_login()

    async def flow_reprint(self) -> None:
        choice = await self.ask(
            ChoiceScreen(
                "reprint", [(k, self.w(k)) for k in ("reprint_last", "reprint_any", "reprint_settle")]
            )
        )
        if choice is None:
            return
        if choice == "reprint_settle":
            info = self.backend.state.last_settlement
            if not info:
                await self.tell(self.w("no_slip"), ok=False)
                return
            slip = settlement_slip_from(info, self.backend.state, self.operator, reprint=True,
                                        merchant_name_en=self.merchant_name_en)  # fmt: skip
            await self.ask(SlipScreen(settlement=slip))
            return
        entry: TxnEntry | None = None
        if choice == "reprint_last":
            state = self.backend.state
            if self.last_slip is not None:
                entry = state.txn(self.last_slip[1], self.last_slip[0])
            if entry is None:
                slip_txns = [t for t in state.txns if t.operation in SLIP_OPERATIONS]
                entry = slip_txns[-1] if slip_txns else None
        else:
            voucher = await self.ask(EntryScreen("enter_voucher", "digits", max_len=6))
            if voucher is None:
                return
            entry = self.entry(voucher)
        if entry is None:
            await self.tell(self.w("no_txn"), ok=False)
            return
        await self.print_slips(entry, reprint=True)

    async def flow_admin(self) -> None:
        from posgate.terminal.operations.base import Input

        if not await self.password("99", "admin_pwd", "sysadmin"):
            return
        choice = await self.ask(
            ChoiceScreen("admin", [(k, self.w(k)) for k in ("make_up", "echo", "params", "status", "ic_params", "info", "language")])
        )
        if choice == "echo":
            result = await self.process(Input("echo", operator=self.operator))
            if result is not None:
                await self.show_result(result)
        elif choice in ("params", "status", "ic_params"):
            kind = {"params": "parameter_download", "status": "status_upload", "ic_params": "ic_download"}[choice]
            result = await self.process(Input(kind, operator=self.operator))
            if result is not None:
                await self.show_result(result)
        elif choice == "make_up":
            await self.flow_make_up()
        elif choice == "info":
            state = self.backend.state
            cfg = state.config
            await self.tell(self.w("info"), f"TID {cfg.terminal_id}", f"MID {cfg.merchant_id}", state.merchant_name,
                            f"SN {cfg.serial}", f"{self.w('batch')} {state.batch}", self.backend.address)  # fmt: skip
        elif choice == "language":
            await self.action_toggle_lang()

    async def flow_make_up(self) -> None:
        state = self.backend.state
        unsigned = [t for t in state.txns if t.signature == "unsigned"]
        if not unsigned:
            await self.tell(self.w("none_unsigned"))
            return
        choices = [(t.stan, f"{t.stan} {mask_pan(t.pan)} RMB {fen_to_yuan(t.amount)}") for t in unsigned]
        stan = await self.ask(ChoiceScreen("choose_unsigned", choices))
        if stan is None:
            return
        entry = self.entry(stan)
        if entry is None:
            return
        await self.capture_signature(entry, make_up=True)
        await self.print_slips(entry)


# ============================================================================ command line


def build_app(
    settings: Any = None, *, stub: bool = False, lang: str = "zh", operator: str | None = None
) -> PosApp:
    """The emulator for the ``posgate terminal`` group's settings (``--state``, ``--host``,
    ``--port``, ``--tid`` ...): the journal is opened and the session built exactly as the other
    ``posgate terminal`` commands do; with ``stub`` (or no settings) no host is needed."""
    slip_dir = Path.cwd() / "slips"
    if stub or settings is None:
        backend: PosBackend = StubBackend()
    else:
        from posgate.terminal import cli as terminal_cli

        journal = terminal_cli._open(settings)
        backend = ClientBackend(terminal_cli._session(settings, journal))
        operator = operator or journal.get("operator", "01")
        slip_dir = Path(settings.state_dir) / "slips"
    return PosApp(backend, lang=lang, operator=operator or "01", slip_dir=slip_dir)


def main(settings: Any = None, *, stub: bool = False, lang: str = "zh", operator: str | None = None) -> None:
    """Run the emulator full screen (see :func:`build_app`)."""
    build_app(settings, stub=stub, lang=lang, operator=operator).run()


__all__ = [
    "DEMO_CARDS",
    "ClientBackend",
    "PosApp",
    "PosBackend",
    "StubBackend",
    "build_app",
    "main",
    "make_card",
    "settlement_slip_from",
    "slip_for",
    "status_of",
]
