"""Training and evaluation functions, the recorded metadata, and the training config."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from classifier.config import TrainingConfig, from_mapping, load_config
from classifier.dataset import validation_docs
from classifier.errors import ClassifierError, CorpusFormatError, NotTrainedError
from classifier.registry import list_models, load_model
from training.evaluate import evaluate
from training.train import train

VERSION = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}(-\d+)?")


@pytest.fixture
def small_corpus(tmp_path: Path, sample_dir: Path) -> Path:
    """24 sample documents copied into tmp_path."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for path in sorted(sample_dir.glob("*.txt"))[:24]:
        shutil.copy(path, folder / path.name)
    return folder


def test_session_model_metadata(trained, trained_models_dir: Path, sample_dir: Path) -> None:
    meta = trained.metadata
    assert meta["name"] == "default"
    assert VERSION.fullmatch(meta["version"])
    assert trained.folder.parent == (trained_models_dir / "default").resolve()
    assert meta["corpus"]["documents_read"] == 72
    assert meta["corpus"]["documents_skipped"] == 0
    assert meta["corpus"]["paths"] == [str(sample_dir)]
    assert meta["version"].endswith(meta["corpus"]["sha256"][:8])
    training = meta["training"]
    if meta["config"]["cv_folds"]:  # every document is fitted and scored out of fold
        assert training["fit_documents"] == training["validation_documents"] == 72
        cv = meta["decision"]["cross_validation"]
        assert cv["folds"] == meta["config"]["cv_folds"]
        # each step's time, and the process's peak memory when it ended (never falling)
        assert (
            list(cv["peak_rss_mb"]) == list(cv["seconds"]) and "first_level_folds" in cv["seconds"]
        )
        peaks = list(cv["peak_rss_mb"].values())
        assert peaks[0] > 0 and peaks == sorted(peaks)
    else:
        assert training["fit_documents"] + training["validation_documents"] == 72
    assert training["validation_documents"] >= 1
    assert len(meta["labels"]) == 8 and meta["labels_dropped"]["labels"] == {}
    assert meta["tokenizer"]["function"] == "classifier.tokenizer.tokenize"
    assert meta["config"]["segmenter"] in ("rjieba", "jieba")
    for level in ("paragraph", "document"):
        assert 0.0 < meta["decision"]["thresholds"][level] < 1.0
        assert meta["metrics"]["validation"][level]["n"] >= 1
    assert meta["versions"]["scikit-learn"]
    assert list(trained.model.labels) == meta["labels"]


def test_rare_labels_are_kept_by_default(tmp_path: Path, small_corpus: Path, write_seed) -> None:
    write_seed(small_corpus / "rare.txt", "RARE TAG|EDUCATION|", "学校教育和女童入学率。" * 5)
    meta = train([small_corpus], tmp_path / "models", name="small", jobs=1).metadata
    assert "RARE TAG" in meta["labels"] and meta["labels_dropped"]["labels"] == {}


def test_train_reports_skips_and_rare_labels(
    tmp_path: Path, small_corpus: Path, write_seed
) -> None:
    (small_corpus / "bad_noheader.txt").write_text("没有标题", encoding="utf-8")
    (small_corpus / "bad_empty.txt").write_bytes(b"")
    write_seed(small_corpus / "rare.txt", "RARE TAG|EDUCATION|", "学校教育和女童入学率。" * 5)
    # rare labels dropped, one validation split: what happens to a tag on one document
    cfg = TrainingConfig(
        rare_labels="drop", cv_folds=0, stacking=False, rare_label_cuts=0, label_names=False
    )
    result = train([small_corpus], tmp_path / "models", name="small", config=cfg, jobs=1)
    meta = result.metadata
    assert result.folder.parent == tmp_path / "models" / "small"
    assert meta["corpus"]["documents_read"] == 25
    assert meta["corpus"]["documents_skipped"] == 2
    assert {s["source"] for s in meta["corpus"]["skipped"]} == {
        str(small_corpus / "bad_noheader.txt"),
        str(small_corpus / "bad_empty.txt"),
    }
    assert meta["corpus"]["skipped_by_reason"] == {"no header": 1, "empty file": 1}
    assert "RARE TAG" not in meta["labels"]
    # a tag on one document is dropped when that document is fitted, else unlearnable
    ids = sorted(p.name for p in small_corpus.glob("*.txt") if not p.name.startswith("bad_"))
    in_validation = bool(validation_docs(ids, 0.1)[ids.index("rare.txt")])
    if in_validation:
        assert meta["labels_unlearnable"] == ["RARE TAG"]
        assert meta["labels_dropped"]["labels"] == {}
    else:
        assert meta["labels_dropped"]["labels"] == {"RARE TAG": 1}
        assert meta["labels_unlearnable"] == []
    assert [m["version"] for m in list_models(tmp_path / "models")] == [result.folder.name]


def test_train_strict_stops_and_saves_nothing(tmp_path: Path, small_corpus: Path) -> None:
    (small_corpus / "zz_bad.txt").write_text("没有标题", encoding="utf-8")
    with pytest.raises(CorpusFormatError) as info:
        train([small_corpus], tmp_path / "models", strict=True)
    assert info.value.source == str(small_corpus / "zz_bad.txt")
    assert list(list_models(tmp_path / "models")) == []


def test_train_without_valid_documents(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("no header", encoding="utf-8")
    with pytest.raises(NotTrainedError, match="no header"):
        train([corpus], tmp_path / "models")
    assert not (tmp_path / "models").exists() or list(list_models(tmp_path / "models")) == []


def test_train_twice_keeps_both_versions(tmp_path: Path, small_corpus: Path) -> None:
    cfg = TrainingConfig(validation_fraction=0.2)
    first = train([small_corpus], tmp_path, name="twice", config=cfg)
    second = train([small_corpus], tmp_path, name="twice", config=cfg)
    assert first.folder != second.folder
    assert len(list(list_models(tmp_path))) == 2
    assert first.metadata["corpus"]["sha256"] == second.metadata["corpus"]["sha256"]
    assert load_model(tmp_path, f"twice@{first.folder.name}").metadata["version"] == (
        first.folder.name
    )


def test_evaluate_function(trained, sample_dir: Path, tmp_path: Path, write_seed) -> None:
    extra = tmp_path / "extra"
    write_seed(extra / "new.txt", "SPACE EXPLORATION|EDUCATION|", "学校教育。" * 10)
    result = evaluate(trained, [sample_dir, extra])
    assert result["model"] == trained.ref
    assert result["corpus"]["documents_read"] == 73
    assert result["labels_unknown_to_model"] == ["SPACE EXPLORATION"]
    assert result["document"]["per_label"]["SPACE EXPLORATION"]["recall"] == 0.0
    assert result["document"]["threshold"] == trained.model.thresholds.level["document"]
    assert json.loads(json.dumps(result)) == result  # JSON-ready


def test_evaluate_without_documents(trained, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"")
    with pytest.raises(NotTrainedError):
        evaluate(trained, [tmp_path])


# --- config ------------------------------------------------------------------------------


def test_config_defaults_and_replace() -> None:
    cfg = TrainingConfig()
    assert cfg.min_labels == 1 and cfg.aggregation == "mean"
    changed = cfg.replace(C=0.5, ngram_max=1)
    assert (changed.C, changed.ngram_max) == (0.5, 1)
    assert cfg.C == 1.0
    assert TrainingConfig(**cfg.to_dict()) == cfg


def test_load_config_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("[training]\nC = 2.0\nngram_max = 1\naggregation = 'max'\n")
    assert load_config(toml) == TrainingConfig(C=2.0, ngram_max=1, aggregation="max")
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"min_df": 1}))
    assert load_config(js) == TrainingConfig(min_df=1)
    assert load_config(None) == TrainingConfig()


@pytest.mark.parametrize(
    "values",
    [
        {"no_such": 1},
        {"C": 0},
        {"C": "abc"},
        {"validation_fraction": 1.0},
        {"aggregation": "median"},
        {"rare_labels": "ignore"},
        {"min_labels": 3, "max_labels": 2},
        {"max_paragraph_chars": 5},
        {"min_df": 0},
        {"max_df": 0},
        {"learner": "forest"},
    ],
)
def test_invalid_config_is_refused(values: dict) -> None:
    with pytest.raises(ClassifierError):
        from_mapping(values, "test")


def test_unreadable_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ClassifierError, match="cannot read config"):
        load_config(bad)
    with pytest.raises(ClassifierError):
        load_config(tmp_path / "missing.toml")
