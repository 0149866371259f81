"""zh-CN (default) and English. Message ids are English; ``locale/zh_CN/LC_MESSAGES/messages.po``
holds the Chinese. The ``.po`` files are the source of truth in the repository; they are compiled
to ``.mo`` in memory with Babel when the application starts (no build step to forget)."""

from __future__ import annotations

import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = {"zh_CN": "简体中文", "en": "English"}
DEFAULT = "zh_CN"
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}


def normalise(lang: str | None) -> str:
    if not lang:
        return DEFAULT
    lang = lang.replace("-", "_")
    if lang in LANGUAGES:
        return lang
    if lang.lower().startswith("zh"):
        return "zh_CN"
    if lang.lower().startswith("en"):
        return "en"
    return DEFAULT


def compile_catalog(lang: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


class I18n:
    def __init__(self) -> None:
        self._catalogs = {lang: compile_catalog(lang) for lang in LANGUAGES}

    def gettext(self, lang: str) -> gettext.NullTranslations:
        return self._catalogs[normalise(lang)]

    def translator(self, lang: str) -> Translator:
        return Translator(self._catalogs[normalise(lang)])


class Translator:
    """``_("Hello {name}", name=x)``: gettext, then ``str.format`` with the keywords."""

    def __init__(self, t: gettext.NullTranslations) -> None:
        self._t = t

    def __call__(self, message: str, **kw: object) -> str:
        text = self._t.gettext(message)
        return text.format(**kw) if kw else text


# Values rendered through ``_()`` as keys (statuses, kinds, roles, sources, causes).
KEYS = (
    "acquirer_admin", "support", "merchant_admin", "merchant_clerk",
    "approved", "declined", "reversed", "voided", "refunded", "partially_refunded", "completed", "annulled",
    "pending", "rejected", "executed", "failed", "ok", "pruned", "open", "resolved", "balanced", "unbalanced",
    "reconciled", "scheduled", "settled", "on_hold", "active", "suspended",
    "terminal", "makeup", "console", "batch_upload",
    "missing_sale", "wrong_amount", "annul", "close_difference",
    "missing_on_host", "missing_on_terminal", "amount_mismatch",
    "sign_on", "sign_off", "refused", "daily", "make_up_temporary", "make_up_formal", "remote", "manual", "cli",
    "Not found.",  # NotFound's default message
)  # fmt: skip


def used_msgids() -> set[str]:
    """Every message id the console uses: ``_("...")`` in templates and modules, ConsoleError texts, KEYS."""
    import re

    from posgate.console.labels import msgids as label_msgids

    here = Path(__file__).parent
    found: set[str] = set(KEYS) | label_msgids()
    call = re.compile(r"""_\(\s*"((?:[^"\\]|\\.)*)"|_\(\s*'((?:[^'\\]|\\.)*)'""")
    err = re.compile(r"""(?:ConsoleError|NotFound|AuthError|Forbidden|LoginRequired|CsrfFailed)\(\s*"((?:[^"\\]|\\.)*)\"|\belse\s+"([A-Z][^"]* [^"]*\.)\"""")
    for path in list(here.glob("templates/*.html")) + list(here.glob("*.py")):
        text = path.read_text()
        for m in call.finditer(text):
            found.add(m.group(1) or m.group(2))
        if path.suffix == ".py":
            found.update(m.group(1) or m.group(2) for m in err.finditer(text))
    for m in re.finditer(r'(?<!")"((?:The|A|An|Wrong|This|Your|Only|Enter|Choose|Name|Say|Unknown|Nothing|No|Too) [^"]*\.)"(?!")',
                         (here / "auth.py").read_text() + (here / "users.py").read_text()):  # fmt: skip
        found.add(m.group(1))
    return {m for m in found if m and any(ch.isalpha() for ch in m)}
