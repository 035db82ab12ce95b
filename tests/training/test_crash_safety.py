"""A training run killed with SIGKILL at any point never damages the registry."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from classifier.registry import list_models, load_model

TAGGER = Path(sys.executable).parent / "tagger"
WORDS = [chr(0x4E00 + i) + chr(0x4E80 + i) for i in range(600)]


def synthetic_corpus(folder: Path, n_docs: int = 1000, n_labels: int = 120) -> Path:
    """Documents whose tags are signalled by a few tag-specific words among random ones."""
    rng = random.Random(7)
    folder.mkdir()
    for d in range(n_docs):
        tags = rng.sample(range(n_labels), 2)
        words = rng.choices(WORDS, k=120) + [WORDS[t] for t in tags for _ in range(5)]
        rng.shuffle(words)
        header = "%%%" + "|".join(f"TAG{t}" for t in tags) + "|"
        (folder / f"{d:05d}.txt").write_text(f"{header}\n\n{''.join(words)}。\n", "utf-8")
    return folder


def start_training(corpus: Path, models: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGGER_")}
    return subprocess.Popen(
        [str(TAGGER), "train", str(corpus), "--models-dir", str(models)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_partial(models: Path, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll until a hidden .partial-* folder exists (the write has begun)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(models.glob("default/.partial-*")):
            return True
        time.sleep(0.001)
    return False


def assert_registry_intact(models: Path, previous: str) -> None:
    versions = [m["version"] for m in list_models(models)]
    assert previous in versions  # the previous version is still there
    assert all(not v.startswith(".") for v in versions)  # no partial version listed
    latest = load_model(models, "default")  # latest is complete and verifies
    assert latest.metadata["version"] in versions
    assert load_model(models, f"default@{previous}").metadata["version"] == previous


@pytest.mark.slow
def test_sigkill_at_any_point_leaves_the_registry_intact(tmp_path: Path) -> None:
    corpus = synthetic_corpus(tmp_path / "corpus")
    models = tmp_path / "models"
    first = start_training(corpus, models)
    assert first.wait(timeout=300) == 0
    (previous,) = [m["version"] for m in list_models(models)]
    started = time.monotonic()
    reference = start_training(corpus, models)
    assert reference.wait(timeout=300) == 0
    duration = time.monotonic() - started
    # Kill points spread over reading, segmenting and fitting, then one during the write.
    for fraction in (0.05, 0.2, 0.4, 0.6, 0.8):
        proc = start_training(corpus, models)
        time.sleep(duration * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert_registry_intact(models, previous)
    proc = start_training(corpus, models)
    hit = wait_for_partial(models, proc, timeout=300)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert hit, "the run finished before a partial folder could be seen"
    assert any(models.glob("default/.partial-*"))  # the kill did interrupt a write
    assert_registry_intact(models, previous)
    # the next successful run sweeps the partial folders of the killed runs
    assert start_training(corpus, models).wait(timeout=300) == 0
    assert not any(models.glob("default/.partial-*"))
    assert_registry_intact(models, previous)
