"""The package as users install it: a wheel, each file once, whose `tagger` runs and serves."""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A wheel built from the checkout (no network: the build backend is a test extra) and
    installed, without its dependencies, into a folder of its own."""
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("tagger-*.whl")
    target = out / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    return wheel, target


def run_installed(target: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run the installed `tagger` from outside the checkout, its own copy first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGGER_")}
    env["PYTHONPATH"] = str(target)
    return subprocess.run(
        [str(target / "bin" / "tagger"), *args],
        env=env,
        cwd=target.parent,
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


def test_the_wheel_holds_each_file_once_and_the_page(installed) -> None:
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n, k in collections.Counter(names).items() if k > 1] == []
    assert "api/static/index.html" in names
    assert {n.split("/")[0] for n in names if n.endswith(".py")} == {
        "api",
        "classifier",
        "training",
    }


def test_installed_tagger_answers_help_and_version(installed) -> None:
    _, target = installed
    from classifier import __version__

    helped = run_installed(target, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "train" in helped.stdout and "serve" in helped.stdout
    version = run_installed(target, "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"tagger {__version__}"
    where = subprocess.run(
        [sys.executable, "-c", "import api.routes.page as p; print(p.PAGE)"],
        env={**os.environ, "PYTHONPATH": str(target)},
        cwd=target.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(target)  # the installed copy, not ROOT


def test_installed_tagger_serves_the_page(installed, trained_models_dir: Path) -> None:
    _, target = installed
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGGER_")}
    env["PYTHONPATH"] = str(target)
    server = subprocess.Popen(
        [
            str(target / "bin" / "tagger"),
            "serve",
            "--port",
            str(port),
            "--models-dir",
            str(trained_models_dir),
        ],
        env=env,
        cwd=target.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        page = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    page = r.read().decode("utf-8")
                break
            except OSError:
                time.sleep(0.2)
        assert page is not None, server.stderr.read().decode() if server.poll() else "no answer"
        assert page == (target / "api" / "static" / "index.html").read_text(encoding="utf-8")
    finally:
        server.terminate()
        server.wait(timeout=30)
