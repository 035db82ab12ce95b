"""Attacks on what tagger reads: corpus files, stdin, settings and the models folder.

Each attack runs the command line of this checkout (``python -m training.cli``, cwd the
checkout) against scratch files in a temporary folder and returns (status, seconds, peak
RSS MB, verdict); the RSS is the child's own high-water mark (VmHWM, sampled every 10 ms;
``wait4``'s ru_maxrss would count the parent's RSS, which exec carries over). ``ATTACKS``
lists them for ``bench/attack.py``; ``python -m bench.attack_input`` prints the table on its
own, with the memory factor of reading a 150 MB file measured beside it
(``ATTACK_INPUT_MB=20`` makes the big files smaller, for a quick run).

A verdict starts with ``ok`` when tagger did what it should (skipped with the reason,
refused in one line, read), else with ``FAIL``.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

from bench.harness import ROOT, Report, Table, arguments, fmt, logger
from classifier.registry import valid_version

log = logger("attack_input")
SAMPLE = ROOT / "data" / "sample"
TIMEOUT_S = 600.0
EDU = "各国应加强学校教育，提高女童入学率，改善农村地区的教学条件和师资水平。"
MB = int(os.environ.get("ATTACK_INPUT_MB", "150"))  # size of the big files
Result = tuple[str, float, float, str]


@dataclass
class Run:
    """One finished command: exit code (None: killed at the timeout), output, cost."""

    code: int | None
    stdout: str
    stderr: str
    seconds: float
    rss_mb: float

    @property
    def status(self) -> str:
        return "timeout" if self.code is None else f"exit {self.code}"

    def result(self, verdict: str) -> Result:
        return self.status, self.seconds, self.rss_mb, verdict


def run_cli(
    args: Sequence[str], stdin: int | IO[Any] | None = None, timeout: float = TIMEOUT_S
) -> Run:
    """``python -m training.cli ARGS`` in the checkout; its peak RSS from ``wait4``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGGER_")}
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "training.cli", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        code: int | None = None
        hwm = 0.0
        while True:
            hwm = max(hwm, hwm_mb(proc.pid))
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                code = os.waitstatus_to_exitcode(status)
                break
            if time.perf_counter() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        proc.returncode = -9 if code is None else code  # reaped here, not by Popen
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        text = out.read(1 << 20).decode(errors="replace")
        return Run(code, text, err.read().decode(errors="replace"), seconds, hwm)


def hwm_mb(pid: int | str = "self") -> float:
    """The peak resident set size of a live process so far (VmHWM), in MB; 0 when gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- verdicts ---------------------------------------------------------------------------------


def one_line_error(run: Run, *words: str, code: int = 1) -> str:
    """ok when the run failed with ``code`` and one ``error:`` line holding ``words``."""
    lines = run.stderr.strip().splitlines()
    if run.code != code:
        return f"FAIL: {run.status}, expected exit {code}: {' | '.join(lines[-2:])[:160]}"
    if code == 2:  # a usage error of the option parser
        return "ok: usage error" if "Invalid value" in run.stderr else "FAIL: no usage error"
    if len(lines) != 1 or not lines[0].startswith("error:"):
        return f"FAIL: {len(lines)} lines: {' | '.join(lines)[:160]}"
    missing = [w for w in words if w not in lines[0]]
    if missing:
        return f"FAIL: message lacks {missing}: {lines[0][:160]}"
    return f"ok: {lines[0][7:][:110]}"


def success(run: Run, *words: str) -> str:
    """ok when the run succeeded and its stderr holds ``words``."""
    if run.code != 0:
        return f"FAIL: {run.status}: {' | '.join(run.stderr.strip().splitlines()[-2:])[:160]}"
    if "internal error" in run.stderr or "Traceback" in run.stderr:
        return "FAIL: internal error"
    missing = [w for w in words if w not in run.stderr + run.stdout]
    return f"FAIL: output lacks {missing}" if missing else f"ok: {'; '.join(words)[:110]}"


# --- scratch files ----------------------------------------------------------------------------


@cache
def scratch() -> Path:
    """A temporary folder removed at exit, with a small corpus and a model trained on it."""
    root = Path(tempfile.mkdtemp(prefix="tagger-attack-input-"))
    atexit.register(shutil.rmtree, root, True)
    corpus = root / "tiny"
    corpus.mkdir()
    for path in sorted(SAMPLE.glob("*.txt"))[:16]:
        shutil.copy(path, corpus / path.name)
    log("training the scratch model")
    run = run_cli(["train", str(SAMPLE), "--models-dir", str(root / "models")])
    if run.code != 0:
        raise RuntimeError(f"cannot train the scratch model: {run.stderr[-500:]}")
    return root


def models() -> str:
    return str(scratch() / "models")


def corpus_with(name: str, make: Callable[[Path], Any]) -> tuple[Path, Any]:
    """A copy of the tiny corpus plus one entry ``name`` made by ``make(path)``."""
    folder = scratch() / f"corpus-{len(list(scratch().iterdir()))}"
    shutil.copytree(scratch() / "tiny", folder)
    return folder, make(folder / name)


def big_file(name: str, line: str) -> Path:
    """A file of about MB megabytes of ``line`` repeated (made once)."""
    path = scratch() / name
    if not path.exists():
        n = MB * 1024 * 1024 // len(line.encode())
        with path.open("w", encoding="utf-8") as f:
            for _ in range(0, n, 10_000):
                f.write(line * min(10_000, n))
    return path


# --- corpus files and inputs ------------------------------------------------------------------


def _train_skips(name: str, make: Callable[[Path], Any], reason: str) -> Result:
    folder, keep = corpus_with(name, make)
    run = run_cli(["train", str(folder), "--models-dir", str(scratch() / "m-skip")], timeout=120)
    del keep
    return run.result(success(run, f"{name}: {reason}", "read 16 documents"))


def fifo_in_corpus() -> Result:
    return _train_skips("000.txt", os.mkfifo, "not a file: is a FIFO (named pipe)")


def device_in_corpus() -> Result:
    return _train_skips(
        "000.jsonl", lambda p: os.symlink("/dev/zero", p), "not a file: is a character device"
    )


def socket_in_corpus() -> Result:
    def make(path: Path) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        return sock

    return _train_skips("000.txt", make, "not a file: is a socket")


def fifo_named_directly() -> Result:
    path = scratch() / "pipe.txt"
    if not path.exists():
        os.mkfifo(path)
    run = run_cli(["predict", str(path), "--models-dir", models()], timeout=60)
    return run.result(one_line_error(run, "not a file: is a FIFO"))


def dev_zero_on_stdin() -> Result:
    with open("/dev/zero", "rb") as zero:
        run = run_cli(["predict", "--models-dir", models()], stdin=zero, timeout=60)
    return run.result(one_line_error(run, "<stdin>", "binary input"))


def endless_text_on_stdin() -> Result:
    yes = subprocess.Popen(["yes", "教育 education"], stdout=subprocess.PIPE)
    try:
        run = run_cli(["predict", "--models-dir", models()], stdin=yes.stdout, timeout=120)
    finally:
        yes.kill()
        yes.wait()
    return run.result(one_line_error(run, "<stdin>", "input too large"))


def big_jsonl_unlabelled() -> Result:
    path = big_file(
        "big-unlabelled.jsonl", json.dumps({"text": EDU * 10}, ensure_ascii=False) + "\n"
    )
    run = run_cli(["train", str(path), "--models-dir", str(scratch() / "m-big")])
    verdict = one_line_error(run, "empty tag list")
    return run.result(f"{verdict} ({path.stat().st_size / 2**20:.0f} MB read)")


def big_jsonl_predict() -> Result:
    path = big_file("big.jsonl", json.dumps({"text": EDU * 10}, ensure_ascii=False) + "\n")
    run = run_cli(["predict", str(path), "--models-dir", models()])
    lines = run.stdout.count("\n")  # in the first MB of output
    size = path.stat().st_size / 2**20
    verdict = f"ok: {size:.0f} MB tagged ({lines:,}+ lines)" if run.code == 0 else success(run)
    return run.result(verdict)


def one_huge_jsonl_line() -> Result:
    from classifier.corpus import MAX_LINE_BYTES

    path = scratch() / "one-line.jsonl"
    if not path.exists():
        with path.open("w", encoding="utf-8") as f:
            f.write('{"tags": ["EDUCATION"], "text": "')
            chunk = EDU * 1000
            size = max(MB * 2**20, MAX_LINE_BYTES + 2**20)  # over the line limit at any MB
            for _ in range(size // len(chunk.encode())):
                f.write(chunk)
            f.write('"}\n')
    run = run_cli(["train", str(path), "--models-dir", str(scratch() / "m-line")])
    return run.result(one_line_error(run, "line too long"))


def floods_of_empty_lines() -> Result:
    path = big_file("floods.jsonl", "x\n" + "\n" * 998)  # a bad line, then 998 empty ones
    run = run_cli(["train", str(path), "--models-dir", str(scratch() / "m-flood")])
    return run.result(one_line_error(run, "skipped (invalid JSON)"))


def header_of_bars() -> Result:
    def make(path: Path) -> None:
        path.write_text("%%%" + "|" * 1_000_000 + "\n\n" + EDU, encoding="utf-8")

    folder, _ = corpus_with("000.txt", make)
    run = run_cli(["train", str(folder), "--models-dir", str(scratch() / "m-bars")], timeout=120)
    return run.result(success(run, "000.txt: empty tag list"))


SURROGATE_LINE = '{"id": "bad", "text": "\\ud800 lone", "tags": ["EDUCATION"]}'


def lone_surrogate_line() -> Result:
    def make(path: Path) -> None:
        good = json.dumps({"text": EDU * 5, "tags": ["EDUCATION"]}, ensure_ascii=False)
        path.write_text(f"{good}\n{SURROGATE_LINE}\n{good}\n", encoding="utf-8")

    folder, _ = corpus_with("more.jsonl", make)
    run = run_cli(["train", str(folder), "--models-dir", str(scratch() / "m-sur")], timeout=120)
    return run.result(success(run, "more.jsonl:2: invalid field: 'text' holds a lone surrogate"))


def lone_surrogate_on_stdin() -> Result:
    path = scratch() / "surrogate-stdin.jsonl"
    path.write_text(json.dumps({"text": EDU}) + "\n" + SURROGATE_LINE + "\n", encoding="utf-8")
    with path.open("rb") as f:
        run = run_cli(["predict", "--models-dir", models()], stdin=f, timeout=60)
    return run.result(one_line_error(run, "<stdin>:2", "lone surrogate"))


def bad_jsonl_lines() -> Result:
    lines = [
        "[" * 100_000,  # nesting too deep for the parser
        '{"text": "t", "tags": ["A"], "n": ' + "9" * 5000 + "}",  # too many digits
        json.dumps({"text": "中文", "tags": ["A"]}, ensure_ascii=False),  # written in GBK below
        '{"text": null, "tags": ["EDUCATION"]}',
        '{"text": "t", "tags": "EDUCATION"}',
        "x",
    ]

    def make(path: Path) -> None:
        data = [ln.encode("gbk") if "中文" in ln else ln.encode() for ln in lines]
        path.write_bytes(b"\n".join(data) + b"\n")

    folder, _ = corpus_with("bad.jsonl", make)
    run = run_cli(["train", str(folder), "--models-dir", str(scratch() / "m-badl")], timeout=120)
    return run.result(success(run, "skipped 6", "nested too deeply", "not UTF-8: byte 0xd6"))


def utf16_bom_file() -> Result:
    """The same seed file in UTF-16 (BOM, CRLF) and in UTF-8 gets the same tags."""
    text = "%%%EDUCATION|\r\n\r\n" + EDU
    (scratch() / "utf8").mkdir(exist_ok=True)
    (scratch() / "utf16").mkdir(exist_ok=True)
    (scratch() / "utf8" / "seed.txt").write_bytes(text.encode("utf-8"))
    (scratch() / "utf16" / "seed.txt").write_bytes(text.encode("utf-16"))
    plain = run_cli(["predict", str(scratch() / "utf8" / "seed.txt"), "--models-dir", models()])
    run = run_cli(["predict", str(scratch() / "utf16" / "seed.txt"), "--models-dir", models()])
    tags = plain.stdout.strip()
    if plain.code != 0 or '"tags": [{' not in tags:
        return run.result(f"FAIL: the UTF-8 copy got no tags: {plain.status}")
    return run.result(success(run, tags))


def utf32_bom_jsonl() -> Result:
    path = scratch() / "utf32.jsonl"
    path.write_bytes(("\ufeff" + json.dumps({"id": "u32", "text": EDU}) + "\n").encode("utf-32-be"))
    run = run_cli(["predict", str(path), "--models-dir", models()], timeout=60)
    return run.result(success(run, '"id": "u32"'))


def gbk_file() -> Result:
    path = scratch() / "gbk.txt"
    path.write_bytes(EDU.encode("gbk"))
    run = run_cli(["predict", str(path), "--models-dir", models()], timeout=60)
    return run.result(one_line_error(run, "not UTF-8: byte 0xb8 at offset 0"))


def non_utf8_file_name() -> Result:
    def make(path: Path) -> None:
        with open(os.fsencode(path.parent) + "/教育.txt".encode("gbk"), "wb") as f:
            f.write(f"%%%EDUCATION|\n\n{EDU}".encode())

    folder, _ = corpus_with("unused", make)
    run = run_cli(["train", str(folder), "--models-dir", str(scratch() / "m-name")], timeout=120)
    return run.result(success(run, "read 17 documents"))


# --- settings: one row per class of bad value -------------------------------------------------


def bad_setting(*args: str, words: Sequence[str] = (), code: int = 1) -> Callable[[], Result]:
    def attack() -> Result:
        cmd = args[0] if args and args[0] in ("train", "tune") else "train"
        rest = args[1:] if args and args[0] in ("train", "tune") else args
        corpus = str(scratch() / "tiny")
        run = run_cli([cmd, corpus, *rest, "--models-dir", str(scratch() / "m-set")], timeout=120)
        return run.result(one_line_error(run, *words, code=code))

    return attack


def bad_config(content: str, *words: str, fifo: bool = False) -> Callable[[], Result]:
    def attack() -> Result:
        path = scratch() / ("fifo-config.toml" if fifo else f"config-{abs(hash(content))}.json")
        if fifo and not path.exists():
            os.mkfifo(path)
        elif not fifo:
            path.write_text(content)
        return bad_setting("--config", str(path), words=words)()

    return attack


# --- the models folder ------------------------------------------------------------------------


def _registry_with(make: Callable[[Path, Path], None]) -> Path:
    """A copy of the scratch models folder with ``make(models, newest_version)`` applied."""
    folder = scratch() / f"models-{len(list(scratch().iterdir()))}"
    shutil.copytree(scratch() / "models", folder, symlinks=True)
    (version,) = [p for p in (folder / "default").iterdir() if valid_version(p.name)]
    make(folder, version)
    return folder


def _lists_only_the_real_version(folder: Path) -> Result:
    (version,) = [
        p.name for p in (scratch() / "models" / "default").iterdir() if valid_version(p.name)
    ]
    listed = run_cli(["models", "--models-dir", str(folder)], timeout=60)
    text = scratch() / "edu.txt"
    text.write_text(EDU, encoding="utf-8")
    run = run_cli(["predict", str(text), "--models-dir", str(folder)], timeout=60)
    ok = run.code == 0 and listed.code == 0 and listed.stdout.count("default@") == 1
    ok = ok and version in listed.stdout
    verdict = f"ok: only {version} listed and served" if ok else f"FAIL: {listed.stdout[-200:]}"
    return listed.result(verdict)


def non_ascii_version() -> Result:
    digits = "".join(chr(0x0660 + int(d)) if d.isdigit() else d for d in "20990101-000000")

    def make(models_dir: Path, version: Path) -> None:
        shutil.copytree(version, models_dir / "default" / f"{digits}-cccccccc")
        shutil.copytree(version, models_dir / "default" / "２０９９0101-000000-dddddddd")

    return _lists_only_the_real_version(_registry_with(make))


def version_linking_outside() -> Result:
    def make(models_dir: Path, version: Path) -> None:
        outside = scratch() / "outside-version"
        if not outside.exists():
            shutil.copytree(version, outside)
        os.symlink(outside, models_dir / "default" / "20990101-000000-eeeeeeee")
        os.symlink(scratch() / "models" / "default", models_dir / "linked-out")

    return _lists_only_the_real_version(_registry_with(make))


ATTACKS: list[tuple[str, Callable[[], Result]]] = [
    ("corpus: a FIFO among the files (train)", fifo_in_corpus),
    ("corpus: a symlink to /dev/zero among the files (train)", device_in_corpus),
    ("corpus: a socket among the files (train)", socket_in_corpus),
    ("input: a FIFO named directly (predict)", fifo_named_directly),
    ("stdin: /dev/zero | predict", dev_zero_on_stdin),
    ("stdin: endless text (yes | predict)", endless_text_on_stdin),
    (f"JSONL: {MB} MB, every record unlabelled (train reads it all)", big_jsonl_unlabelled),
    (f"JSONL: {MB} MB of records (predict)", big_jsonl_predict),
    (f"JSONL: one line of {max(MB, 33)} MB (train)", one_huge_jsonl_line),
    (f"JSONL: {MB} MB, bad lines between floods of empty lines (train)", floods_of_empty_lines),
    ("seed: a header of 1,000,000 '|' (train)", header_of_bars),
    ("JSONL: a lone-surrogate line in a corpus (train)", lone_surrogate_line),
    ("JSONL: a lone-surrogate line on stdin (predict)", lone_surrogate_on_stdin),
    ("JSONL: deep nesting, 5000 digits, GBK, wrong types (train)", bad_jsonl_lines),
    ("encoding: UTF-16 with a BOM, seed file (predict)", utf16_bom_file),
    ("encoding: UTF-32-BE with a BOM, JSONL (predict)", utf32_bom_jsonl),
    ("encoding: GBK file (predict)", gbk_file),
    ("file name: GBK bytes on a UTF-8 system (train)", non_utf8_file_name),
    (
        "--set ngram_max=2.5 (int not whole)",
        bad_setting("--set", "ngram_max=2.5", words=["ngram_max"]),
    ),
    ("--set seed=x (text for an int)", bad_setting("--set", "seed=x", words=["seed"])),
    ("--set seed=-1 (under the bound)", bad_setting("--set", "seed=-1", words=["seed"])),
    (
        "--set max_labels=1e9 (over the bound)",
        bad_setting("--set", "max_labels=1e9", words=["max_labels"]),
    ),
    ("--set C=nan (NaN)", bad_setting("--set", "C=nan", words=["'C'", "finite"])),
    ("--set C=inf (infinity)", bad_setting("--set", "C=inf", words=["'C'", "finite"])),
    ("--set C=9…9 (5000 digits)", bad_setting("--set", "C=" + "9" * 5000, words=["'C'"])),
    (
        "--set refit_on_all=maybe (not a bool)",
        bad_setting("--set", "refit_on_all=maybe", words=["true or false"]),
    ),
    (
        "--set refit_on_all=1 (int for a bool)",
        bad_setting("--set", "refit_on_all=1", words=["true or false"]),
    ),
    (
        "--set learner=foo (not a choice)",
        bad_setting("--set", "learner=foo", words=["learner", '"svm"']),
    ),
    ("--set extra=[1] (not an object)", bad_setting("--set", "extra=[1]", words=["extra"])),
    (
        "--set min_labels=20 (over max_labels)",
        bad_setting("--set", "min_labels=20", words=["max_labels"]),
    ),
    ("--set nokey=1 (unknown key)", bad_setting("--set", "nokey=1", words=['"nokey"'])),
    (
        "--set segmenter=[/bold] (markup)",
        bad_setting("--set", "segmenter=[/bold]", words=["[/bold]"]),
    ),
    ("--set C (no =)", bad_setting("--set", "C", words=["KEY=VALUE"])),
    ("--config: a JSON list", bad_config("[1, 2]", "expected an object")),
    ("--config: NaN for C", bad_config('{"C": NaN}', "'C'")),
    ("--config: nesting too deep", bad_config("[" * 100_000, "cannot read config")),
    ("--config: a FIFO", bad_config("", "not a file: is a FIFO", fifo=True)),
    (
        "--grid '{\"nokey\": [1]}' (unknown key)",
        bad_setting("tune", "--grid", '{"nokey": [1]}', words=['"nokey"']),
    ),
    (
        "--grid '{\"C\": [NaN]}' (bad candidate)",
        bad_setting("tune", "--grid", '{"C": [NaN]}', words=["'C'"]),
    ),
    (
        "--grid '{\"min_labels\": [20]}' (bad with the base)",
        bad_setting("tune", "--grid", '{"min_labels": [20]}', words=["grid candidate"]),
    ),
    ("--jobs 100000", bad_setting("--jobs", "100000", code=2)),
    ("models: newest version named in Arabic-Indic/full-width digits", non_ascii_version),
    ("models: newest version and a name linking outside", version_linking_outside),
]


# --- memory factor of reading -----------------------------------------------------------------

SMALL = json.dumps({"id": "d", "text": "教育文本", "tags": ["A"]}, ensure_ascii=False) + "\n"
READ_SCRIPT = """
import sys
from classifier.corpus import read_corpus
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
base = rss()
docs = read_corpus([sys.argv[1]], require_tags=False)
if sys.argv[2] == "hold":
    kept = list(docs)
    n = len(kept)
else:
    n = sum(1 for _ in docs)
print(base, rss(), n)
"""


def read_factors() -> Table:
    """Peak RSS over the imports while reading a MB-MB file, per byte of the file."""
    table = Table(
        f"reading a {MB} MB file: memory per byte of the file (peak RSS over the baseline "
        "after imports, read_corpus in a fresh process)",
        ["file", "documents", "MB", "peak RSS over baseline MB", "factor"],
    )
    cases = [
        ("seed, Chinese", "big-seed-cjk.txt", "%%%A|\n\n", EDU + "\n", "hold"),
        (
            "seed, ASCII",
            "big-seed-ascii.txt",
            "%%%A|\n\n",
            "United Nations report. " * 3 + "\n",
            "hold",
        ),
        ("seed, Chinese + one emoji", "big-seed-astral.txt", "%%%A|\n\n😀", EDU + "\n", "hold"),
        ("JSONL, 1 KB records, documents dropped", "big.jsonl", "", None, "drop"),
        ("JSONL, 1 KB records, documents kept", "big.jsonl", "", None, "hold"),
        ("JSONL, 50-byte records, documents dropped", "small.jsonl", "", SMALL, "drop"),
        ("JSONL, 50-byte records, documents kept", "small.jsonl", "", SMALL, "hold"),
    ]
    for label, name, head, line, mode in cases:
        if line is SMALL:
            path = big_file(name, SMALL)
        elif line is not None:
            path = scratch() / name
            if not path.exists():
                big = big_file(f"{name}.body", line)
                with path.open("wb") as f:
                    f.write(head.encode())
                    with big.open("rb") as src:
                        shutil.copyfileobj(src, f, 1 << 20)
                big.unlink()
        else:
            path = big_file(name, json.dumps({"text": EDU * 10}, ensure_ascii=False) + "\n")
        out = subprocess.run(
            [sys.executable, "-c", READ_SCRIPT, str(path), mode],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        )
        base, peak, n = map(int, out.stdout.split())
        size = path.stat().st_size
        docs = f"{n:,}"
        table.rows.append(
            [
                label,
                docs,
                fmt(size / 2**20, 0),
                fmt((peak - base) / 2**20, 0),
                fmt((peak - base) / size),
            ]
        )
    table.notes += [
        "a seed file is decoded chunk by chunk: it costs its text twice (the pieces, then the "
        "joined text), never its bytes; Python holds Chinese in 2 bytes a character (2/3 of "
        "its UTF-8), ASCII in 1, and any character outside the BMP makes the whole text 4.",
        "JSONL is read a line at a time: the reader holds a chunk and a line; what grows with "
        "the file is the documents a caller keeps: their text, and about 250 bytes of objects "
        "each (a Document, its strings and tuple), which is what 50-byte records show.",
    ]
    return table


def run_attacks(selected: Sequence[tuple[str, Callable[[], Result]]]) -> Table:
    table = Table(
        "attacks on reading and settings (python -m training.cli)",
        ["attack", "status", "s", "peak RSS MB", "verdict"],
    )
    for name, attack in selected:
        log(name)
        try:
            status, seconds, rss, verdict = attack()
        except Exception as exc:  # the bench goes on: the row says what broke
            status, seconds, rss, verdict = "error", float("nan"), float("nan"), f"FAIL: {exc}"
        table.rows.append([name, status, fmt(seconds, 1), fmt(rss, 0), verdict.replace("|", "/")])
    failed = sum(row[-1].startswith("FAIL") for row in table.rows)
    table.notes.append(f"{len(table.rows) - failed} of {len(table.rows)} ok")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = arguments("attack_input", __doc__, data=False)
    parser.add_argument("--only", default="", help="run the attacks whose name holds this")
    args = parser.parse_args(argv)
    report = Report("attack_input", args.out, mb=MB)
    selected = [(n, a) for n, a in ATTACKS if args.only in n]
    attacks = run_attacks(selected)
    report.show(attacks)
    if not args.only:
        report.show(read_factors())
    path = report.write()
    print(f"wrote {path}")
    return 1 if any(row[-1].startswith("FAIL") for row in attacks.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
