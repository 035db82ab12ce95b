"""The ``tagger`` command line: help, train, models, eval, predict, and one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from classifier.registry import PROMOTION_FILE
from training.cli import app

ROOT = Path(__file__).resolve().parents[2]
TAGGER = Path(sys.executable).parent / "tagger"  # the environment running the tests
EXPECTED_LABELS = {
    "EDUCATION",
    "PUBLIC HEALTH",
    "ENVIRONMENT",
    "ECONOMIC DEVELOPMENT",
    "HUMAN RIGHTS",
    "PEACEKEEPING OPERATIONS",
    "FOOD SECURITY",
    "WOMEN'S RIGHTS",
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGGER_")}
    env.update(extra)
    return env


def run_tagger(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TAGGER), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_env(**env),
        timeout=120,
    )


def version_folders(parent: Path) -> list[Path]:
    """The version folders of a model (not its promotion record)."""
    return [p for p in parent.iterdir() if p.name != PROMOTION_FILE]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- help and import cost -----------------------------------------------------------------


def test_help_lists_commands(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("train", "eval", "predict", "serve", "models"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["train", "eval", "predict", "serve", "models"])
def test_command_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--models-dir" in result.stdout


def test_importing_the_cli_does_not_import_sklearn() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import training.cli, sys; print('sklearn' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "False"


def test_installed_entry_point_help() -> None:
    result = run_tagger("--help")
    assert result.returncode == 0
    assert "train" in result.stdout and "Traceback" not in result.stderr


# --- train, models ------------------------------------------------------------------------


def test_train_then_models_lists_it(runner: CliRunner, tmp_path: Path, sample_dir: Path) -> None:
    models = tmp_path / "models"
    result = runner.invoke(
        app,
        ["train", str(sample_dir), "--name", "cli", "--models-dir", str(models), "--set", "C=0.5"],
    )
    assert result.exit_code == 0, result.output
    (folder,) = version_folders(models / "cli")
    assert f"saved cli@{folder.name}" in result.stdout
    assert "read 72 documents" in result.stderr
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["config"]["C"] == 0.5
    assert set(meta["labels"]) == EXPECTED_LABELS
    listed = runner.invoke(app, ["models", "--models-dir", str(models)])
    assert listed.exit_code == 0, listed.output
    assert f"cli@{folder.name}" in listed.stdout


def test_tune_records_the_search_and_trains_the_winner(
    runner: CliRunner, tmp_path: Path, sample_dir: Path
) -> None:
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"C": [0.5], "stacking": [True, False]}))
    models = tmp_path / "models"
    result = runner.invoke(
        app, ["tune", str(sample_dir), "--grid", str(grid), "--models-dir", str(models)]
    )
    assert result.exit_code == 0, result.output
    (folder,) = version_folders(models / "default")
    meta = json.loads((folder / "metadata.json").read_text())
    tuning = meta["tuning"]
    assert tuning["objective"] == "validation document micro-F1"
    assert tuning["trials"][0]["params"] == {"C": 1.0, "stacking": True}  # the defaults first
    assert {k: meta["config"][k] for k in ("C", "stacking")} == tuning["best"]
    assert tuning["best_score"] == max(t["score"] for t in tuning["trials"]) or (
        tuning["best"] == tuning["trials"][0]["params"]
    )
    assert "best {" in result.stdout


def test_tune_with_a_bad_grid_fails_in_one_line(tmp_path: Path, sample_dir: Path) -> None:
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"C": []}))
    result = run_tagger("tune", str(sample_dir), "--grid", str(grid))
    assert result.returncode == 1
    assert result.stderr.strip().endswith("the grid must map field names to non-empty lists")
    assert len(result.stderr.strip().splitlines()) == 1


def test_models_honours_environment(runner: CliRunner, trained, trained_models_dir) -> None:
    result = runner.invoke(app, ["models"], env={"TAGGER_MODELS_DIR": str(trained_models_dir)})
    assert result.exit_code == 0, result.output
    assert trained.ref in result.stdout


def test_models_on_empty_folder_fails(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "--models-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no trained model" in result.stderr


# --- eval ---------------------------------------------------------------------------------


def test_eval_prints_table_and_writes_json(
    runner: CliRunner, tmp_path: Path, trained_models_dir: Path, trained, sample_dir: Path
) -> None:
    out = tmp_path / "eval.json"
    result = runner.invoke(
        app, ["eval", str(sample_dir), "--models-dir", str(trained_models_dir), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    for name in ("micro-F1", "macro-F1", "P@1", "P@3", "P@5", "nDCG@5", "paragraph", "document"):
        assert name in result.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["model"] == trained.ref
    assert data["corpus"]["documents_read"] == 72
    for level in ("paragraph", "document"):
        metrics = data[level]
        for key in ("micro", "macro"):
            assert set(metrics[key]) == {"precision", "recall", "f1"}
            assert all(0.0 <= v <= 1.0 for v in metrics[key].values())
        for key in ("p@1", "p@3", "p@5", "ndcg@5"):
            assert 0.0 <= metrics[key] <= 1.0
        assert set(metrics["per_label"]) == EXPECTED_LABELS
    assert data["document"]["n"] == 72
    assert data["paragraph"]["n"] == data["corpus"]["paragraphs"] >= data["document"]["n"] == 72
    # a model evaluated on its own training data does well
    assert data["document"]["micro"]["f1"] > 0.8


# --- predict ------------------------------------------------------------------------------

EDU = "各国应加强学校教育，提高女童入学率，改善农村地区的教学条件和师资水平。"
PKO = "维和特派团在报告所述期间记录了侵犯人权事件，安全理事会延长了特派团的任务期限。"


def predict(runner: CliRunner, models: Path, *args: str, stdin: str | None = None):
    result = runner.invoke(app, ["predict", "--models-dir", str(models), *args], input=stdin)
    assert result.exit_code == 0, result.output
    return json_lines(result.stdout)


def test_predict_file_jsonl_and_folder(
    runner: CliRunner, tmp_path: Path, trained_models_dir: Path, write_seed
) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text(EDU, encoding="utf-8")
    seed = write_seed(tmp_path / "seed.txt", "EDUCATION|", PKO)
    records = tmp_path / "batch.jsonl"
    records.write_text(
        json.dumps({"id": "r1", "text": EDU}, ensure_ascii=False)
        + "\n"
        + json.dumps({"text": PKO}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    rows = predict(runner, trained_models_dir, str(plain), str(seed), str(records))
    assert [r["id"] for r in rows] == ["plain.txt", "seed.txt", "r1", f"{records}:2"]
    for row in rows:
        assert set(row) == {"id", "tags"}
        assert len(row["tags"]) >= 1
        assert all(set(t) == {"tag", "score"} and 0 <= t["score"] <= 1 for t in row["tags"])
    assert rows[0]["tags"][0]["tag"] == "EDUCATION"
    assert rows[1]["tags"][0]["tag"] == "PEACEKEEPING OPERATIONS"
    assert rows[2]["tags"] == rows[0]["tags"]
    assert rows[3]["tags"] == rows[1]["tags"]


def test_predict_reads_stdin(runner: CliRunner, trained_models_dir: Path) -> None:
    (row,) = predict(runner, trained_models_dir, stdin=EDU)
    assert row["id"] == "<stdin>"
    assert row["tags"][0]["tag"] == "EDUCATION"
    (again,) = predict(runner, trained_models_dir, "-", stdin=EDU)
    assert again == row


def test_predict_reads_jsonl_from_stdin(runner: CliRunner, trained_models_dir: Path) -> None:
    stdin = (
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [
                {"id": "a", "text": EDU},
                {"id": 2, "text": PKO},
                {"text": EDU},
            ]
        )
        + "\n"
    )
    rows = predict(runner, trained_models_dir, stdin=stdin)
    assert [r["id"] for r in rows] == ["a", "2", "<stdin>:3"]
    assert rows[1]["tags"][0]["tag"] == "PEACEKEEPING OPERATIONS"


def test_predict_matches_the_library(runner: CliRunner, trained_models_dir: Path, model) -> None:
    (row,) = predict(runner, trained_models_dir, stdin=PKO)
    (pred,) = model.predict([PKO])
    assert row["tags"] == [{"tag": t.tag, "score": t.score} for t in pred.tags]


def test_predict_top_k_and_threshold(runner: CliRunner, trained_models_dir: Path, model) -> None:
    (row,) = predict(runner, trained_models_dir, "--top-k", "1", stdin=PKO)
    assert len(row["tags"]) == 1
    (row,) = predict(runner, trained_models_dir, "--threshold", "0", "--top-k", "3", stdin=PKO)
    assert len(row["tags"]) == 3
    scores = [t["score"] for t in row["tags"]]
    assert scores == sorted(scores, reverse=True)
    (row,) = predict(runner, trained_models_dir, "-t", "0.3", stdin=PKO)
    (pred,) = model.predict([PKO], threshold=0.3)
    assert row["tags"] == [{"tag": t.tag, "score": t.score} for t in pred.tags]
    assert all(t["score"] >= 0.3 for t in row["tags"])
    (row,) = predict(runner, trained_models_dir, "-t", "1", stdin="xyz")
    assert row["tags"] == []


def test_predict_paragraphs(runner: CliRunner, trained_models_dir: Path) -> None:
    edu, pko = EDU * 9, PKO * 9  # each long enough to stand as a paragraph
    (row,) = predict(runner, trained_models_dir, "--paragraphs", stdin=f"{edu}\n{pko}")
    assert [p["text"] for p in row["paragraphs"]] == [edu, pko]
    assert row["paragraphs"][0]["tags"][0]["tag"] == "EDUCATION"


def test_predict_explain(runner: CliRunner, trained_models_dir: Path) -> None:
    """--explain: the API's evidence in each JSON line, spans into the text as read."""
    from classifier.paragraphs import squash
    from classifier.tokenizer import normalize

    text = f"{EDU * 9}\n{PKO * 9}"
    (plain,) = predict(runner, trained_models_dir, "--paragraphs", stdin=text)
    (row,) = predict(runner, trained_models_dir, "--paragraphs", "--explain", stdin=text)
    assert [(t["tag"], t["score"]) for t in row["tags"]] == [
        (t["tag"], t["score"]) for t in plain["tags"]
    ]
    assert "evidence" not in plain["tags"][0]
    for tags in [row["tags"], *(p["tags"] for p in row["paragraphs"])]:
        for tag in tags:
            assert tag["evidence"]
            for e in tag["evidence"]:
                assert set(e) == {"term", "contribution", "spans"}
                for start, end in e["spans"]:
                    assert squash(normalize(text[start:end], True)) == e["term"]


def test_predict_honours_environment(runner: CliRunner, trained_models_dir: Path) -> None:
    result = runner.invoke(
        app, ["predict"], input=EDU, env={"TAGGER_MODELS_DIR": str(trained_models_dir)}
    )
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[0]["tags"][0]["tag"] == "EDUCATION"


@pytest.mark.parametrize("option", [["--top-k", "0"], ["--threshold", "1.5"], ["-t", "-0.1"]])
def test_predict_rejects_bad_options(runner: CliRunner, trained_models_dir: Path, option) -> None:
    result = runner.invoke(
        app, ["predict", "--models-dir", str(trained_models_dir), *option], input=EDU
    )
    assert result.exit_code == 2


# --- errors through the installed entry point ---------------------------------------------


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for word in words:
        assert word in lines[0]


def test_train_missing_corpus(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-corpus"
    result = run_tagger("train", str(missing), "--models-dir", str(tmp_path / "models"))
    assert_one_line_error(result, str(missing), "no such file")
    assert not (tmp_path / "models" / "default").exists()


def test_train_unknown_set_key(tmp_path: Path, sample_dir: Path) -> None:
    result = run_tagger(
        "train", str(sample_dir), "--set", "no_such_field=1", "--models-dir", str(tmp_path)
    )
    assert_one_line_error(result, "no_such_field")


def test_train_unknown_segmenter(tmp_path: Path, sample_dir: Path) -> None:
    result = run_tagger(
        "train", str(sample_dir), "--set", "segmenter=foo", "--models-dir", str(tmp_path)
    )
    assert_one_line_error(result, "segmenter")


def test_predict_unknown_model(trained_models_dir: Path) -> None:
    result = run_tagger(
        "predict", "--model", "nope", "--models-dir", str(trained_models_dir), stdin=EDU
    )
    assert_one_line_error(result, "nope")
    assert result.stdout == ""


def test_predict_invalid_model_ref(trained_models_dir: Path) -> None:
    result = run_tagger(
        "predict", "--model", "../x", "--models-dir", str(trained_models_dir), stdin=EDU
    )
    assert_one_line_error(result, "invalid model name")


def test_predict_bad_jsonl_on_stdin(trained_models_dir: Path) -> None:
    result = run_tagger("predict", "--models-dir", str(trained_models_dir), stdin="{bad\n")
    assert_one_line_error(result, "<stdin>:1", "invalid JSON")


def test_eval_unknown_model_from_environment(tmp_path: Path, sample_dir: Path) -> None:
    result = run_tagger("eval", str(sample_dir), TAGGER_MODELS_DIR=str(tmp_path))
    assert_one_line_error(result, str(tmp_path))


def test_environment_models_dir_in_subprocess(trained_models_dir: Path) -> None:
    result = run_tagger("predict", stdin=EDU, TAGGER_MODELS_DIR=str(trained_models_dir))
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[0]["tags"][0]["tag"] == "EDUCATION"


def test_train_strict_names_the_first_bad_file(tmp_path: Path, sample_dir: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_dir, corpus)
    (corpus / "000_bad.txt").write_bytes("%%%EDUCATION|\n\n教育和学校".encode("gbk"))
    result = run_tagger("train", str(corpus), "--strict", "--models-dir", str(tmp_path / "m"))
    assert_one_line_error(result, "000_bad.txt", "not UTF-8")
    assert not (tmp_path / "m" / "default").exists() or not list_versions(tmp_path / "m")
    relaxed = run_tagger("train", str(corpus), "--models-dir", str(tmp_path / "m"))
    assert relaxed.returncode == 0, relaxed.stderr
    assert "000_bad.txt: not UTF-8" in relaxed.stderr
    assert "skipped 1" in relaxed.stderr


def list_versions(models: Path) -> list[str]:
    from classifier.registry import list_models

    return [m["version"] for m in list_models(models)]


# --- reading never hangs or explodes (issue 12, req 6) ------------------------------------


def test_train_skips_a_fifo_and_a_device_in_the_corpus(tmp_path: Path, sample_dir: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_dir, corpus)
    os.mkfifo(corpus / "000_fifo.txt")  # reading it would wait for a writer forever
    os.symlink("/dev/zero", corpus / "000_zero.jsonl")  # reading it would never end
    result = run_tagger("train", str(corpus), "--models-dir", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    assert f"skipped {corpus / '000_fifo.txt'}: not a file: is a FIFO (named pipe)" in result.stderr
    assert (
        f"skipped {corpus / '000_zero.jsonl'}: not a file: is a character device" in result.stderr
    )
    assert "read 72 documents" in result.stderr and "skipped 2" in result.stderr


def test_predict_on_a_fifo_fails_at_once(tmp_path: Path, trained_models_dir: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    result = run_tagger(
        "predict", str(tmp_path / "pipe.txt"), "--models-dir", str(trained_models_dir)
    )
    assert_one_line_error(result, "pipe.txt", "not a file: is a FIFO")


def test_dev_zero_on_stdin_fails_at_once(trained_models_dir: Path) -> None:
    with open("/dev/zero", "rb") as zero:
        result = subprocess.run(
            [str(TAGGER), "predict", "--models-dir", str(trained_models_dir)],
            stdin=zero,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=clean_env(),
            timeout=60,
        )
    assert_one_line_error(result, "<stdin>", "binary input: mostly NUL bytes")


def test_endless_stdin_stops_at_the_limit(
    runner: CliRunner, trained_models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from classifier import corpus
    from classifier.errors import CorpusFormatError

    monkeypatch.setattr(corpus, "MAX_FILE_BYTES", 1024 * 1024)
    result = runner.invoke(
        app, ["predict", "--models-dir", str(trained_models_dir)], input=b"y\n" * 600_000
    )
    assert isinstance(result.exception, CorpusFormatError), result.output
    assert "input too large: more than 1048576 bytes" in str(result.exception)
    assert result.stdout == ""


def test_train_skips_a_lone_surrogate_line_and_reads_the_rest(
    tmp_path: Path, sample_dir: Path
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_dir, corpus)
    good = json.dumps({"id": "j1", "text": EDU * 3, "tags": ["EDUCATION"]}, ensure_ascii=False)
    bad = '{"id": "j2", "text": "\\ud800 lone", "tags": ["EDUCATION"]}'
    (corpus / "more.jsonl").write_text(f"{good}\n{bad}\n{good.replace('j1', 'j3')}\n", "utf-8")
    result = run_tagger("train", str(corpus), "--models-dir", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    assert "more.jsonl:2: invalid field: 'text' holds a lone surrogate U+D800" in result.stderr
    assert "read 74 documents" in result.stderr and "skipped 1" in result.stderr


def test_predict_reads_utf16_with_a_bom(tmp_path: Path, trained_models_dir: Path, model) -> None:
    path = tmp_path / "utf16.txt"
    path.write_bytes(EDU.encode("utf-16"))
    result = run_tagger("predict", str(path), "--models-dir", str(trained_models_dir))
    assert result.returncode == 0, result.stderr
    (row,) = json_lines(result.stdout)
    (pred,) = model.predict([EDU])
    assert row["tags"] == [{"tag": t.tag, "score": t.score} for t in pred.tags]


def test_names_that_are_not_utf8_or_look_like_markup(tmp_path: Path, sample_dir: Path) -> None:
    """A corpus file named in GBK on a UTF-8 system, and one named like rich markup."""
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_dir, corpus)
    with open(os.fsencode(corpus) + "/教育.txt".encode("gbk"), "wb") as f:
        f.write(f"%%%EDUCATION|\n\n{EDU}".encode())
    (corpus / "[bold red]bad :smile: [link=x].txt").write_bytes(b"abc\xff")
    result = run_tagger("train", str(corpus), "--models-dir", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    bad = f"{corpus}/[bold red]bad :smile: [link=x].txt: not UTF-8: byte 0xff at offset 3"
    assert f"skipped {bad}" in result.stderr
    assert "read 73 documents" in result.stderr
    predicted = run_tagger("predict", str(corpus), "--models-dir", str(tmp_path / "m"))
    assert predicted.returncode == 1  # the first bad file stops predict, named as it is
    assert_one_line_error(predicted, bad)
    (corpus / "[bold red]bad :smile: [link=x].txt").unlink()
    predicted = run_tagger("predict", str(corpus), "--models-dir", str(tmp_path / "m"))
    assert predicted.returncode == 0, predicted.stderr
    ids = [r["id"] for r in json_lines(predicted.stdout)]
    assert "\\xbd\\xcc\\xd3\\xfd.txt" in ids


# --- every setting validated (issue 12, req 7) ---------------------------------------------


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """16 sample documents: enough to train on in a second or two."""
    folder = tmp_path_factory.mktemp("tiny")
    for path in sorted(sample_dir.glob("*.txt"))[:16]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", "ngram_max=2.5"], ["ngram_max", "an integer from 1 to 5", "2.5"]),
        (["--set", "seed=x"], ["seed", "an integer from 0 to 4294967295"]),
        (["--set", "seed=-1"], ["seed", "an integer from 0 to 4294967295"]),
        (["--set", "max_labels=1e9"], ["max_labels", "from 1 to 1000"]),
        (["--set", "C=nan"], ["'C'", "a finite number from 1e-06 to 1e+06"]),
        (["--set", "C=NaN"], ["'C'", "finite number"]),
        (["--set", "C=inf"], ["'C'", "finite number"]),
        (["--set", "C=1e999"], ["'C'", "finite number"]),
        (["--set", "learner=sgd", "--set", "C=1e300"], ["'C'", "finite number"]),
        (["--set", "refit_on_all=maybe"], ["refit_on_all", "true or false", '"maybe"']),
        (["--set", "refit_on_all=1"], ["refit_on_all", "true or false"]),
        (["--set", "char_ngram_max=10"], ["char_ngram_max", "from 0 to 3"]),
        (["--set", "min_labels=20"], ["min_labels", "max_labels (10)"]),
        (["--set", "segmenter=[/bold]"], ["segmenter", "[/bold]"]),
        (["--set", "no_equals"], ["KEY=VALUE"]),
        (["--set", "nokey=[1]"], ['"nokey"']),
    ],
)
def test_train_refuses_bad_settings_in_one_line(
    tmp_path: Path, tiny_corpus: Path, args: list[str], words: list[str]
) -> None:
    result = run_tagger("train", str(tiny_corpus), *args, "--models-dir", str(tmp_path))
    assert_one_line_error(result, "--set", *words)
    assert not (tmp_path / "default").exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"ngram_max": 2.5}', ["ngram_max", "an integer"]),
        ('{"training": {"refit_on_all": "maybe"}}', ["refit_on_all", "true or false"]),
        ('{"C": NaN}', ["'C'", "finite"]),
        ("[1, 2]", ["expected an object"]),
        ('{"nokey": 1}', ['"nokey"']),
        ("[" * 100_000, ["cannot read config"]),
    ],
)
def test_train_refuses_bad_config_files_in_one_line(
    tmp_path: Path, tiny_corpus: Path, content: str, words: list[str]
) -> None:
    config = tmp_path / "c.json"
    config.write_text(content)
    result = run_tagger(
        "train", str(tiny_corpus), "--config", str(config), "--models-dir", str(tmp_path)
    )
    assert_one_line_error(result, str(config), *words)


def test_train_with_a_fifo_as_config_fails_at_once(tmp_path: Path, tiny_corpus: Path) -> None:
    os.mkfifo(tmp_path / "c.toml")
    result = run_tagger(
        "train",
        str(tiny_corpus),
        "--config",
        str(tmp_path / "c.toml"),
        "--models-dir",
        str(tmp_path),
    )
    assert_one_line_error(result, "c.toml", "not a file: is a FIFO")


@pytest.mark.parametrize(
    ("grid", "words"),
    [
        ('{"nokey": [1]}', ['"nokey"']),
        ('{"ngram_max": [2.5]}', ["ngram_max", "an integer from 1 to 5"]),
        ('{"C": ["x"]}', ["'C'", "finite number"]),
        ('{"refit_on_all": ["maybe"]}', ["refit_on_all", "true or false"]),
        ('{"min_labels": [20]}', ["grid candidate min_labels=20", "max_labels (10)"]),
        ('{"C": []}', ["non-empty lists"]),
        ("{bad", ["cannot read grid"]),
    ],
)
def test_tune_refuses_bad_grids_in_one_line(
    tmp_path: Path, tiny_corpus: Path, grid: str, words: list[str]
) -> None:
    result = run_tagger("tune", str(tiny_corpus), "--grid", grid, "--models-dir", str(tmp_path))
    assert_one_line_error(result, *words)
    path = tmp_path / "grid.json"
    path.write_text(grid)
    result = run_tagger(
        "tune", str(tiny_corpus), "--grid", str(path), "--models-dir", str(tmp_path)
    )
    assert_one_line_error(result, *words)


def test_tune_takes_an_inline_grid(runner: CliRunner, tmp_path: Path, tiny_corpus: Path) -> None:
    result = runner.invoke(
        app, ["tune", str(tiny_corpus), "--grid", '{"C": [2]}', "--models-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    (folder,) = version_folders(tmp_path / "default")
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["tuning"]["grid"] == {"C": [2.0]}


def run_main(args: list[str]) -> tuple[int, str]:
    """``tagger ARGS`` in this process, as the installed script runs it: exit code, stderr."""
    from unittest import mock

    from training.cli import main

    stderr = io.StringIO()
    with (
        mock.patch.object(sys, "argv", ["tagger", *args]),
        contextlib.redirect_stderr(stderr),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, stderr.getvalue()


def _fields() -> list[str]:
    from classifier.config import field_specs

    return list(field_specs())


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=4,
)
EDGES = st.sampled_from(
    [0, 1, 2, 3, 5, 6, 20, 1000, 1001, -1, 0.5, 1.0, 1e-6, 1e6, 1e7, 2**32 - 1, 2**32, 1e-7]
    + ["svm", "sgd", "logistic", "rjieba", "jieba", "auto", "mean", "whole", "keep", "balanced"]
)


def near_bounds(name: str) -> st.SearchStrategy[object]:
    """Values at and around a field's declared bounds and choices, where mistakes hide."""
    from classifier.config import field_specs

    spec = field_specs()[name]
    points: list[object] = list(spec.choices()) if spec.choices is not None else []
    if spec.kind is bool:
        points += [True, False]
    for b in (spec.ge, spec.gt, spec.le, spec.lt):
        if b is not None:
            points += [b, b - 1, b + 1, int(b), float(b)]
    return st.sampled_from(points) if points else st.nothing()


@st.composite
def set_items(draw: st.DrawFn) -> list[str]:
    items = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
        name = draw(st.sampled_from(_fields()) | st.text(max_size=8))
        known = name in _fields()
        value = draw(
            (near_bounds(name) | near_bounds(name) | JSON_VALUES | EDGES) if known else JSON_VALUES
        )
        raw = value if isinstance(value, str) and draw(st.booleans()) else json.dumps(value)
        items += ["--set", f"{name}={raw}"]
    return items


@given(set_items())
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_settings_end_in_success_or_one_clean_line(
    tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory, items: list[str]
) -> None:
    """Random JSON values at every field through `tagger train --set`: a model, or one line
    `error: ...` with exit code 1; never an internal error or a traceback."""
    models = tmp_path_factory.mktemp("random-set")
    code, stderr = run_main(["train", str(tiny_corpus), *items, "--models-dir", str(models)])
    event(f"exit code {code}")
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
    if code == 0:
        assert len(version_folders(models / "default")) == 1
    else:
        assert code == 1, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), stderr


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--jobs", "100000"],
        ["train", "--jobs", "0"],
        ["tune", "-j", "999999"],
        ["eval", "--per-label", "-1"],
        ["eval", "--jobs", "1e3"],
    ],
)
def test_out_of_range_options_are_usage_errors(
    runner: CliRunner, tiny_corpus: Path, tmp_path: Path, args: list[str]
) -> None:
    """Refused before any work (100,000 jobs started hundreds of worker processes)."""
    result = runner.invoke(
        app, [args[0], str(tiny_corpus), *args[1:], "--models-dir", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "default").exists()


def test_predict_explain_gives_the_terms_shared_with_a_tags_name(
    runner: CliRunner, tmp_path: Path
) -> None:
    from tests.classifier.test_names import RARE, SAYS_ITS_NAME, save_named_model

    save_named_model(tmp_path)
    text = SAYS_ITS_NAME
    (row,) = predict(runner, tmp_path, "--explain", stdin=text)
    (tag,) = [t for t in row["tags"] if t["tag"] == RARE[3]]
    assert tag["name_evidence"][0]["term"] == RARE[3]
    for e in tag["name_evidence"]:
        assert set(e) == {"term", "contribution", "spans"} and e["contribution"] > 0
        assert all(text[a:b] == e["term"] for a, b in e["spans"])
