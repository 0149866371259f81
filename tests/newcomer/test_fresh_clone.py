"""What a newcomer meets on a fresh clone: the repository stands alone (nothing refers to files
outside it, every relative link of the README and docs/ resolves) and the two commands keep the
work tree clean (`make run` puts its runtime data where git ignores it, and passes ARGS on)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[2]

# Spelled in two parts so that this file does not match itself.
OUTSIDE = ("../" + "shared", "shared/" + "spec", "shared/" + "vectors", "shared/" + "design", "design/" + "performance-notes",
           "cup-pos-" + "8583.md", "crypto" + ".md")


def _tracked_files() -> list[Path]:
    """The files git tracks (a fresh clone's content); every file but .git when git is absent."""
    if shutil.which("git") and (REPO / ".git").exists():
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
        return [REPO / p for p in out.decode().split("\0") if p]
    return [p for p in REPO.rglob("*") if p.is_file() and ".git" not in p.relative_to(REPO).parts]


def test_no_tracked_file_refers_outside_the_repository() -> None:
    offenders = []
    for path in _tracked_files():
        if not path.is_file():
            continue  # deleted in the work tree, not committed yet
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for n, line in enumerate(text.splitlines(), 1):
            if any(o in line for o in OUTSIDE):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()[:100]}")
    assert not offenders, "references to files outside the repository:\n" + "\n".join(offenders)


_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _markdown_pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in _FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        if m := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


def test_every_relative_link_of_the_readme_and_docs_resolves() -> None:
    dead = []
    pages = _markdown_pages()
    assert (REPO / "docs" / "dialect.md") in pages and (REPO / "docs" / "demo-data.md") in pages
    for page in pages:
        text = _FENCE.sub("", page.read_text(encoding="utf-8"))
        for target in _LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http:, https:, mailto:
            path, _, anchor = unquote(target).partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                dead.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif REPO not in dest.parents and dest != REPO:
                dead.append(f"{page.relative_to(REPO)}: {target} (outside the repository)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                dead.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert not dead, "dead links:\n" + "\n".join(dead)


def _make_n(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # -n prints the recipes without running them; the venv's stamp may look stale, which only
    # adds the install lines to what is printed.
    return subprocess.run(["make", "-n", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout


def _serve_line(out: str) -> list[str]:
    lines = [ln for ln in out.splitlines() if "posgate serve" in ln]
    assert len(lines) == 1, out
    return lines[0].split()


def test_make_run_passes_args_on() -> None:
    argv = _serve_line(_make_n("run", "ARGS=--port 0 --console-port 8001"))
    assert argv[-4:] == ["--port", "0", "--console-port", "8001"]
    assert "--demo" in argv


def test_make_run_leaves_nothing_untracked(tmp_path: Path) -> None:
    """The demo host of `make run`, started and stopped in a clone-like directory (the repository's
    .gitignore, nothing committed but it) with a backup taken the way the console takes its
    daily one: `git status` shows nothing new."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    out = _make_n("run")
    setup = [ln for ln in out.splitlines() if ln.startswith("mkdir")]
    argv = _serve_line(out)
    db = argv[argv.index("--db") + 1] if "--db" in argv else "sqlite:///posgate.db"  # serve's default

    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *a], capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    shutil.copy(REPO / ".gitignore", tmp_path / ".gitignore")
    git("add", ".gitignore")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "ignore rules")
    for line in setup:
        subprocess.run(line, shell=True, cwd=tmp_path, check=True)

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cli = [sys.executable, "-m", "posgate.cli"]
    log = tmp_path.parent / "serve.log"
    with log.open("w") as out_f:
        proc = subprocess.Popen(
            [*cli, "serve", "--demo", "--db", db, "--port", "0", "--console-port", "0"],
            cwd=tmp_path, env=env, stdout=out_f, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120  # a bound on a hung start-up, not a timed assertion
            while "terminals connect to" not in log.read_text() and proc.poll() is None:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            assert proc.poll() is None, log.read_text()
            # The console's daily backup and `posgate backup` write to the same default place.
            subprocess.run([*cli, "backup", "--db", db], cwd=tmp_path, env=env, check=True, capture_output=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    made = {p.relative_to(tmp_path).parts[0] for p in tmp_path.iterdir()} - {".git", ".gitignore"}
    assert made, "the demo host wrote nothing: the test would prove nothing"
    assert git("status", "--porcelain", "--untracked-files=all") == ""
