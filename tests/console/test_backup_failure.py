"""A backup that fails (here: the backup folder is a file) tells the person at the console why,
in their language and in words they can act on; the exception's English text (errno, path,
exception class) stays off the page and goes, masked, to the log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from posgate.console import backup as backup_mod

from .helpers import Env, Live, browser_login, csrf_of, login

TECHNICAL = ("Errno", "FileExistsError", "NotADirectoryError", "File exists", "Not a directory", "[folder_missing]")


def _break_backup_dir(env: Env, tmp_path: Path) -> Path:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the backup folder should be")
    env.app.state.console.settings.backup_dir = blocker
    return blocker


def test_failed_backup_in_chromium_says_why_in_chinese(live: Live, page: Any, tmp_path: Path) -> None:
    _break_backup_dir(live.env, tmp_path)
    browser_login(page, live.url, "admin")
    page.goto(f"{live.url}/backups")
    page.click("[data-testid=start-backup]")
    page.wait_for_url(f"{live.url}/backups")
    flash = page.locator("[data-testid=flash]").inner_text()
    assert "备份失败" in flash and "备份文件夹无法使用" in flash and "日志" in flash, flash
    body = page.locator("body").inner_text()
    assert not [w for w in TECHNICAL if w in body], body
    assert "not-a-folder" not in flash  # the folder is named in the page's settings line, not in the error
    cell = page.locator("[data-testid=backup-table] .badge-bad").first
    assert cell.get_attribute("title") == "备份文件夹无法使用：文件夹不存在，或同名的是一个文件。请检查备份文件夹设置。"


def test_failed_backup_in_english_and_the_detail_in_the_log(env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _break_backup_dir(env, tmp_path)
    c = login(env.client(), "admin")
    c.cookies.set("posgate_lang", "en")
    with caplog.at_level(logging.WARNING, logger="posgate.console.backup"):
        r = c.post("/backups", data={"csrf_token": csrf_of(c, "/backups")})
    assert r.status_code == 200
    assert "The backup failed." in r.text and "a file has its name" in r.text
    assert not [w for w in TECHNICAL if w in r.text]
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "posgate.console.backup"]
    assert logged and "[folder_missing]" in logged[0] and "not-a-folder" in logged[0]


def test_the_logged_detail_is_masked() -> None:
    text = ("pg_dump: error: connection to server failed for postgresql://posgate:s3cret@db:5432/posgate "
            "password=hunter2 card 6212142000000000012")  # fmt: skip
    masked = backup_mod.mask_detail(text)
    assert "s3cret" not in masked and "hunter2" not in masked and "6212142000000000012" not in masked
    assert "postgresql://posgate:***@db:5432" in masked and "621214*********0012" in masked
