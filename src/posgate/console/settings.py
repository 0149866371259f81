"""The console's settings: one object that the CLI (``posgate serve``) or a test fills in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy import Engine


@dataclass
class ConsoleSettings:
    db_url: str | None = None
    engine: Engine | None = None
    keyring: Any = None  # posgate.store.keyring.Keyring (full-PAN search); optional
    timezone: str = "Asia/Shanghai"
    backup_dir: Path = field(default_factory=lambda: Path("backups"))
    backup_keep_days: int = 7
    backup_time: str = "02:00"  # local time of the daily backup
    demo: bool = False
    cookie_secure: bool = True  # Secure cookies; browsers accept them on http://127.0.0.1 and localhost
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    token_minutes: int = 15  # API bearer tokens are short-lived
    lockout_threshold: int = 5  # failed logins in a row before the account is locked
    lockout_minutes: int = 15
    unsigned_after_minutes: int = 24 * 60  # a slip unsigned for longer is flagged
    scheduler: bool = True  # periodic unsigned-slip check and daily backup
    scheduler_interval: float = 60.0
    default_language: str = "zh_CN"
    # The console's address as cardholders reach it (https://pay.example.com): e-receipt links and
    # their QR codes on slips. Empty: the console page shows links on the address it was opened
    # with, and PDF slips carry no QR code. Also read from POSGATE_PUBLIC_URL or the settings table.
    public_url: str = field(default_factory=lambda: os.environ.get("POSGATE_PUBLIC_URL", ""))
    receipt_link_days: int = 30  # an e-receipt link expires after this many days
    receipt_rate_per_minute: int = 30  # receipt pages one client address may open a minute
    # Inside ``posgate serve``: the host's posgate.network.upstream.Upstream (None: no link
    # configured) and ``in_host`` true; a console run on its own cannot see the links.
    upstream: Any = None
    in_host: bool = False
    saf_stale_minutes: int = 5  # a reversal or advice waiting longer to go up is a notice

    @classmethod
    def coerce(cls, obj: Any) -> ConsoleSettings:
        """Accept our settings, another part's settings object (duck-typed) or a dict."""
        if isinstance(obj, cls):
            return obj
        if obj is None:
            return cls()
        src = obj if isinstance(obj, dict) else {k: getattr(obj, k) for k in dir(obj) if not k.startswith("_")}
        aliases = {
            "db_url": ("db_url", "database_url", "db", "url"),
            "timezone": ("timezone", "tz"),
            "backup_dir": ("backup_dir", "backups_dir"),
        }
        kw: dict[str, Any] = {}
        for f in fields(cls):
            for name in aliases.get(f.name, (f.name,)):
                value = src.get(name)
                if value is not None and not callable(value):
                    kw[f.name] = value
                    break
        if "backup_dir" in kw:
            kw["backup_dir"] = Path(kw["backup_dir"])
        return cls(**kw)
