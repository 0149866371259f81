"""What a person reads on the console's pages, in a real headless Chromium, as every role and in
both languages: no raw Python values (``{'``, ``None``, ``[1, ...``), no internal codes
(``device_serial``, ``merchant_suspended``, ``lapse``...), no untranslated English on Chinese
pages, and none of the pipeline's internals (MTI, processing code, STAN, steps, entry-mode codes)
for merchant roles. The pages are enumerated from the application's routes, so a page added later
is walked too.

What is exempt, and why:
* ``pre.slip``: the e-slip reproduces the printed slip, whose labels are bilingual by design;
* ``[data-raw]``: recorded values shown as they were stored (the audit log's before/after and
  detail), still checked for Python reprs;
* ``.mono`` cells and words of the data itself (usernames, display names, merchants' English
  names, ids, card masks): identifiers, not interface text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from posgate.console.fmt import today
from posgate.console.i18n import used_msgids
from posgate.console.labels import LABELS, english, plain
from posgate.store import console_schema as cs
from posgate.store import schema as s

from .helpers import BISTRO, MART, Env, Live, api_token, browser_login
from .test_security import iter_routes

pytestmark = pytest.mark.browser

USERS = ["admin", "support", "mart-admin", "mart-clerk", "bistro-admin"]
MERCHANT_USERS = ["mart-admin", "mart-clerk", "bistro-admin"]
SKIP_SUFFIXES = (".csv", ".pdf", ".png", ".webmanifest", "/download", "/evidence")
SKIP_PATHS = {"/login", "/lang/{code}", "/health", "/metrics", "/logout"}

# English words a Chinese page may show: brand and standard names, units, the product's name.
ALLOWED_WORDS = {
    "posgate", "pdf", "csv", "cup", "unionpay", "visa", "mastercard", "jcb", "amex", "pos", "mcc", "png", "mb",
    "english", "cny", "asia", "shanghai", "utc", "mac", "tmk", "kcv", "mti", "ic", "qpboc", "id",
    "iso",  # the standard named in a dialect profile (ISO 9564 PIN block formats)
    "des", "tdes",  # cipher names (a terminal's key algorithm: DES/TDES or SM4)
    # the restore command quoted on the backups page
    "restore", "db", "url",
}  # fmt: skip
REPR = [
    (re.compile(r"\{\s*'|\{\s*\"|'\s*:\s|\"\s*:\s"), "a dict's repr"),
    (re.compile(r"\[\s*['\"\d\[{]"), "a list's repr"),
    (re.compile(r"(?<![A-Za-z])(None|True|False)(?![A-Za-z])"), "a Python constant"),
    (re.compile(r"<[A-Za-z_.]+ object at 0x|datetime\.|Decimal\("), "an object's repr"),
]
SNAKE = re.compile(r"(?<![A-Za-z0-9_])[a-z]+(?:_[a-z0-9]+)+(?![A-Za-z0-9_])")
PATH = re.compile(r"(?:/[\w.-]+){2,}/?")  # a file system path (the backup directory) is an identifier
WORD = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z]{2,}(?![A-Za-z0-9_])")
# Words only an acquirer's staff may see: the pipeline's internals.
TECHNICAL_WORDS = re.compile(r"\b(MTI|STAN|processing code|Step trace|Key scheme|TMK|KCV|MAC)\b|处理码|处理步骤|密钥方案|\(0\d1\)")

TEXT_JS = """(skip) => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walker.nextNode())) {
    const el = n.parentElement;
    if (!el || el.closest('script,style')) continue;
    if (skip && el.closest(skip)) continue;
    if (!el.closest('select') && !el.getClientRects().length) continue;
    out.push(n.textContent);
  }
  return out.join(' ').replace(/\\s+/g, ' ');
}"""


def _extra_rows(env: Env) -> None:
    """Rows the shared seed lacks, so that every kind of code appears somewhere on a page."""
    now = datetime.now(UTC)
    with env.db.engine.begin() as conn:
        for kind, status in (("scheduled", "ok"), ("manual", "ok"), ("cli", "pruned"), ("manual", "failed")):
            conn.execute(insert(cs.backups).values(
                at=now - timedelta(hours=3), kind=kind, started_by="system:backup" if kind == "scheduled" else "admin",
                path=f"/var/backups/posgate-{kind}.db.gz" if status != "failed" else "", size=123_456,
                row_counts={"transactions": 13, "users": 5}, status=status,
                detail="disk full" if status == "failed" else None))  # fmt: skip
        for kind, cause, code in (("refused", "lapse", "03"), ("refused", "merchant_suspended", "03"),
                                  ("sign_on", "remote", "00"), ("sign_on", "make_up_formal", "00"),
                                  ("sign_on", "make_up_temporary", "00"), ("refused", "terminal_suspended", "58"),
                                  ("sign_off", None, "00"), ("reinstated", "reinstated", "00")):  # fmt: skip
            conn.execute(insert(s.sign_ons).values(
                at=now - timedelta(minutes=30), day=today("Asia/Shanghai"), terminal_id="20000001", merchant_id=BISTRO,
                kind=kind, cause=cause, operator="01", device_serial="DEMO0003", key_scheme="003", batch_no="000001",
                stan="000120", response_code=code, detail=f"{cause} (host detail, English)"))  # fmt: skip
    c = env.client()
    clerk = api_token(c, "mart-clerk")
    r = c.post("/api/v1/makeup-entries", headers=clerk, json={"kind": "wrong_amount", "reason": "金额录错",
                                                              "original_id": env.ids.mart_signed, "amount": 50_00})  # fmt: skip
    assert r.status_code == 201, r.text
    r = c.post("/api/v1/refund-requests", headers=clerk, json={"original_id": env.ids.mart_sale_for_refund, "amount": 10_00,
                                                               "reason": "顾客退货"})  # fmt: skip
    assert r.status_code == 201, r.text
    _clearing_rows(env)


def _clearing_rows(env: Env) -> None:
    """An imported clearing file: differences open, waiting for approval and resolved."""
    from clearing.seed import import_day
    from posgate.clearing import service

    import_day(env.db)
    with env.db.engine.begin() as conn:
        diffs = {d["kind"]: d["id"] for d in service.differences(conn)}
        service.propose(conn, "support", diffs["amount_mismatch"], "follow_network", "签购单金额为 55.00")
        service.decide(conn, "admin", diffs["amount_mismatch"], True, "", "Asia/Shanghai")
        service.propose(conn, "support", diffs["duplicate"], "keep_ours", "由网络冲销重复记录")


def _pages(env: Env) -> list[str]:
    values = {"txn_id": env.ids.mart_unsigned, "entry_id": 1, "rid": 1, "terminal_id": "10000002", "merchant_id": MART,
              "settlement_id": env.ids.settlement_id, "backup_id": 1, "user_id": 1, "day": today("Asia/Shanghai"),
              "token": "no-such-receipt-link", "diff_id": 1, "payout_id": 1, "change_id": 1}  # fmt: skip
    out = []
    for r in iter_routes(env.app.routes):
        if "GET" not in r.methods or r.path.startswith("/api/") or r.path in SKIP_PATHS or r.path.endswith(SKIP_SUFFIXES):
            continue
        out.append(re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(values[m.group(1)]), r.path))
    # pages reached with query strings, and the other seeded records
    out += [f"/transactions/{env.ids.mart_declined}", f"/transactions/{env.ids.bistro_unsigned}",
            f"/settlement/batches/{env.ids.settlement_id + 1}", "/makeup?status=pending", "/makeup/new?kind=annul",
            "/sign-ons?kind=refused", "/terminals/10000001", "/terminals/20000001", "/clearing?status=proposed",
            "/clearing/differences/2", "/clearing/differences/5"]  # fmt: skip
    return sorted(set(out))


def _data_words(env: Env) -> set[str]:
    """Words of the data itself (not interface text): usernames, display names, English names."""
    words: set[str] = set()
    with env.db.engine.connect() as conn:
        for (name, display) in conn.execute(select(cs.users.c.username, cs.users.c.display_name)):
            words |= {w.lower() for w in WORD.findall(f"{name} {display}")}
        for (name_en,) in conn.execute(select(s.merchants.c.name_en)):
            words |= {w.lower() for w in WORD.findall(name_en or "")}
    return words | {"system", "backup"}  # actors such as system:backup


def _problems(page: Any, url: str, lang: str, allowed: set[str], merchant: bool) -> list[str]:
    everything = page.evaluate(TEXT_JS, "")
    shown = PATH.sub(" ", page.evaluate(TEXT_JS, "[data-raw], pre.slip"))
    words = PATH.sub(" ", page.evaluate(TEXT_JS, "[data-raw], pre.slip, .mono"))
    found = []
    for rx, what in REPR:
        for m in rx.finditer(everything):
            found.append(f"{lang} {url}: {what}: …{everything[max(0, m.start() - 30):m.end() + 30]}…")
    for m in SNAKE.finditer(shown):
        found.append(f"{lang} {url}: internal code {m.group(0)!r}")
    if lang == "zh_CN":
        for w in sorted({w for w in WORD.findall(words) if w.lower() not in allowed}):
            found.append(f"{lang} {url}: English word {w!r} on a Chinese page: …{_around(words, w)}…")
    if merchant:
        for m in TECHNICAL_WORDS.finditer(shown):
            found.append(f"{lang} {url}: pipeline internals for a merchant: {m.group(0)!r}")
    return found


def _around(text: str, word: str) -> str:
    i = text.find(word)
    return text[max(0, i - 30):i + len(word) + 30]


@pytest.mark.parametrize("user", USERS)
def test_every_page_reads_as_words_not_codes(live: Live, page: Any, user: str) -> None:
    _extra_rows(live.env)
    allowed = ALLOWED_WORDS | _data_words(live.env)
    browser_login(page, live.url, user)
    problems: list[str] = []
    pages = _pages(live.env)
    assert len(pages) > 20
    for lang in ("zh_CN", "en"):
        page.goto(f"{live.url}/lang/{lang}?next=/")
        for url in pages:
            page.goto(live.url + url)
            problems += _problems(page, url, lang, allowed, user in MERCHANT_USERS)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def test_batch_totals_are_a_table_in_yuan(live: Live, page: Any) -> None:
    browser_login(page, live.url, "mart-admin")
    for lang, cup, debits, agree in (("zh_CN", "内卡（银联）", "借记", "不一致"), ("en", "CUP cards", "Debits", "differ")):
        page.goto(f"{live.url}/lang/{lang}?next=/settlement/batches/{live.env.ids.settlement_id}")
        table = page.locator("[data-testid=batch-totals]")
        row = table.locator("tr[data-kind=domestic][data-side=debit]")
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        assert cells == [cup, debits, "3", "3,000.00", "2", "2,500.00", agree], cells
        credit = [c.strip() for c in table.locator("tr[data-kind=domestic][data-side=credit] td").all_inner_texts()]
        assert credit[2:6] == ["1", "12.34", "1", "12.34"], credit
        assert table.locator("tr[data-kind=foreign]").count() == 2
        text = page.locator("main").inner_text()
        assert "{" not in text and "debit_amount" not in text and "300000" not in text


@pytest.mark.parametrize("user", MERCHANT_USERS)
def test_merchants_see_business_words(live: Live, page: Any, user: str) -> None:
    txn = live.env.ids.bistro_unsigned if user == "bistro-admin" else live.env.ids.mart_unsigned
    browser_login(page, live.url, user)
    page.goto(f"{live.url}/transactions/{txn}")
    kv = page.locator("dl.kv").inner_text()
    assert page.locator("[data-testid=mti]").count() == 0 and page.locator("[data-testid=trace]").count() == 0
    assert "MTI" not in kv and "处理码" not in kv and "STAN" not in kv
    assert page.locator("[data-testid=entry-mode]").inner_text().strip() == "刷卡"  # entry mode 021: magstripe, PIN entered
    assert "凭证号" in kv and "参考号" in kv and "授权码" in kv
    page.goto(f"{live.url}/lang/en?next=/transactions/{txn}")
    assert page.locator("[data-testid=entry-mode]").inner_text().strip() == "Swipe"
    assert page.locator("h1").inner_text().startswith("Sale")
    # the acquirer's support desk still sees how the host handled it
    page.context.clear_cookies()
    browser_login(page, live.url, "support")
    page.goto(f"{live.url}/transactions/{txn}")
    assert page.locator("[data-testid=mti]").inner_text().startswith("0200")
    assert page.locator("[data-testid=trace] tbody tr").count() == 3
    assert "(021)" in page.locator("[data-testid=entry-mode]").inner_text()


@pytest.mark.parametrize("user", MERCHANT_USERS)
def test_merchant_api_has_no_pipeline_internals(env: Env, user: str) -> None:
    c = env.client()
    h = api_token(c, user)
    items = c.get("/api/v1/transactions", headers=h).json() + c.get("/api/v1/unsigned", headers=h).json()
    assert items
    one = c.get(f"/api/v1/transactions/{items[0]['id']}", headers=h).json()
    for item in [*items, one]:
        assert not {"mti", "processing_code", "stan", "entry_mode", "trace"} & set(item), item
        assert item["voucher"] and "rrn" in item and "auth_code" in item and "entry_method" in item
    assert one["entry_method"] == "Swipe"
    for t in c.get("/api/v1/terminals", headers=h).json():
        assert not {"tmk_kcv", "key_scheme", "mac_failures"} & set(t)
    staff = api_token(c, "support")
    full = c.get(f"/api/v1/transactions/{items[0]['id']}", headers=staff).json()
    assert full["mti"] == "0200" and full["trace"] and full["stan"] and full["entry_mode"] == "021"


def test_every_msgid_has_a_chinese_translation() -> None:
    from babel.messages.pofile import read_po

    from posgate.console.i18n import LOCALE_DIR

    with (LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        zh = {m.id: m.string for m in read_po(f) if m.id}
    missing = sorted(m for m in used_msgids() if not zh.get(m))
    assert not missing, missing
    untranslated = sorted(m for m in used_msgids() if zh.get(m) == m and WORD.search(m))
    assert not untranslated, untranslated


def test_every_code_the_host_writes_has_a_label() -> None:
    """The codes the host and the console store, by where they are shown."""
    from posgate.dialect.operations import OPERATIONS  # noqa: F401 - operations have their own names

    expected = {
        "signon_cause": {"daily", "make_up_temporary", "make_up_formal", "remote", "mac_failures", "cutoff",
                         "device_serial", "lapse", "merchant_suspended", "reinstated"},
        "signon_kind": {"sign_on", "sign_off", "refused", "reinstated"},
        "backup_kind": {"scheduled", "manual", "cli"}, "backup_status": {"ok", "failed", "pruned"},
        "difference_kind": {"missing_on_host", "missing_on_terminal", "amount_mismatch"},
        "batch_result": {"1", "2", "3"}, "upload_end": {"202", "207"},
        "statement_status": {"open", "scheduled", "settled", "on_hold"},
        "entry_mode": {"011", "021", "051", "071", "962"},
    }  # fmt: skip
    for domain, codes in expected.items():
        assert all(english(domain, c) for c in codes), (domain, [c for c in codes if not english(domain, c)])
    assert english("signon_cause", "no-such-code") is None and set(LABELS) >= set(expected)


def test_stored_values_render_as_words() -> None:
    assert plain({"locked_until": None, "active": False, "row_counts": {"transactions": 3}}) == \
        "locked_until: —; active: ✗; row_counts: transactions: 3"  # fmt: skip
    assert "'" not in plain(["a", 1]) and "None" not in plain(None)

