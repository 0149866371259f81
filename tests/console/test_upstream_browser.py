"""The upstream links page in real Chromium, Chinese and English, desktop and phone width:
a link down with a reversal waiting, as the support desk sees it. Words, not codes (the checks
of ``test_page_text``); the phone page does not scroll sideways as a whole.
``POSGATE_SCREENSHOTS=1`` also writes docs/screenshots/upstream-*.png."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from network.netkit import wait_for
from pair.harness import PairTerminal

from .helpers import Live, browser_login
from .test_page_text import ALLOWED_WORDS, _data_words, _problems
from .test_phone import PHONE
from .upstream_kit import Linked

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WORDS = {
    "zh_CN": ("上游链路", "中断", "冲正", "链路签到后", "存储转发队列"),
    "en": ("Upstream links", "Down", "Reversal", "when the link is signed on", "Store-and-forward queue"),
}


def _shoot(page: Any, name: str, tmp_path: Path) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    if os.environ.get("POSGATE_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_upstream_page_in_both_languages_on_desktop_and_phone(linked: Linked, live: Live, browser: Any,
                                                              tmp_path: Path) -> None:  # fmt: skip
    assert live.env.app is linked.app
    pos = PairTerminal(linked)  # type: ignore[arg-type]
    assert pos.sign_on().code == "00"
    linked.fault("drop", "1")
    assert pos.sale("ok", 12_345).code == "98"
    linked.fault("down", "on")
    wait_for(lambda: linked.state() == "down", 15, "the link to be shown down")
    allowed = ALLOWED_WORDS | _data_words(live.env) | {"cupnet"}
    problems: list[str] = []
    for form, ctx_kw in (("desktop", {"viewport": {"width": 1360, "height": 900}}), ("phone", PHONE)):
        ctx = browser.new_context(locale="zh-CN", **ctx_kw)
        page = ctx.new_page()
        page.set_default_timeout(10_000)
        try:
            browser_login(page, live.url, "support")
            for lang in ("zh_CN", "en"):
                page.goto(f"{live.url}/lang/{lang}?next=/upstream")
                page.wait_for_url(f"{live.url}/upstream")
                section = page.locator("[data-testid=link-cupnet]")
                assert section.locator("[data-testid=link-state]").get_attribute("data-state") == "down"
                text = page.locator("main").inner_text()
                for word in WORDS[lang]:
                    assert word in text, (form, lang, word)
                assert "621214*********0012" in text and "123.45" in text
                assert "6212142000000000012" not in page.content()
                assert page.locator("[data-testid=queue-item]").count() == 1
                assert section.locator("[data-testid=queue-reversals]").inner_text() == "1"
                problems += _problems(page, "/upstream", lang, allowed, merchant=False)
                if form == "phone":  # the page fits the screen's width; only the queue's table scrolls
                    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
                # the bell counts the link down; the notices page links here
                assert int(page.locator("[data-testid=bell-count]").inner_text()) >= 1
                _shoot(page, f"upstream-{form}-{lang.replace('_', '-')}", tmp_path)
            page.goto(f"{live.url}/notices")
            page.locator("[data-notice=upstream_down] a").click()
            page.wait_for_url(f"{live.url}/upstream")
        finally:
            ctx.close()
    assert not problems, "\n".join(problems)
