"""Explanations: contributions are TF-IDF value × level-1 weight; spans slice back to terms."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.config import TrainingConfig
from classifier.explain import MAX_SPANS, explain_predictions, explain_texts
from classifier.paragraphs import squash
from classifier.text import prepare_text
from classifier.tokenizer import normalize
from tests.classifier.test_offsets import WORDS

_WORD_CHARS = re.compile(r"[\W_]")
TEXTS = {
    "raw": "各国应加强学校教育，提高女童入学率，保护儿童的受教育权利。",
    "segmented": "各国 应 加强 学校 教育 ， 提高 女童 入学率 ， 保护 儿童 的 受 教育 权利 。",
    "traditional": "各國應加強學校教育，提高女童入學率，保護兒童的受教育權利。",
    "full-width": "ＵＮＥＳＣＯ报告：各国应加强学校教育（２０２３年）。",
    "mixed": "聯合國 報告 指出：UNESCO  和 ＷＨＯ 应 加强 儿童 教育 。\n\n2. 預防犯罪和刑事司法。",
}


def _trained(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path, cfg: TrainingConfig):
    from classifier.registry import load_model
    from training.train import train

    models_dir = tmp_path_factory.mktemp("explain-models")
    train([str(sample_dir)], models_dir, name="m", config=cfg, jobs=1)
    return load_model(models_dir, "m").model


@pytest.fixture(scope="module")
def chars_model(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path):
    """A model with word bigrams and character n-grams (1-2) of every word, trained on the
    test corpus."""
    cfg = TrainingConfig(ngram_max=2, char_ngram_max=2, char_scope="all")
    return _trained(tmp_path_factory, sample_dir, cfg)


@pytest.fixture(scope="module")
def words_model(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path):
    """A model of word unigrams alone."""
    return _trained(tmp_path_factory, sample_dir, TrainingConfig(char_ngram_max=0))


def _evidence_of(model, text: str, n_terms: int = 5, paragraphs: bool = True):
    predictions = model.predict([text], paragraphs=paragraphs)
    return predictions[0], explain_predictions(model, [text], predictions, n_terms)[0]


def _check_spans(text: str, evidence, simplify: bool = True) -> None:
    for items in evidence.values():
        contributions = [e.contribution for e in items]
        assert contributions == sorted(contributions, reverse=True)
        assert all(c > 0 for c in contributions)
        for e in items:
            assert e.spans, e.term
            assert len(e.spans) <= MAX_SPANS
            for start, end in e.spans:
                assert 0 <= start < end <= len(text)
                # what is written there, normalised, without the spaces and punctuation
                # tokens drop (a word pair's span holds what lies between the two words)
                written = _WORD_CHARS.sub("", normalize(text[start:end], simplify))
                if any(len(normalize(c)) > 1 for c in text[start:end]):
                    # a character n-gram inside one character's expansion (Ⅱ is ii)
                    assert squash(e.term) in written, (e.term, text[start:end])
                else:
                    assert written == squash(e.term), (e.term, text[start:end])


@pytest.mark.parametrize("kind", list(TEXTS))
@pytest.mark.parametrize("which", ["model", "chars_model"])
def test_spans_slice_back_to_the_term(request, kind: str, which: str) -> None:
    model = request.getfixturevalue(which)
    text = TEXTS[kind]
    prediction, explanation = _evidence_of(model, text)
    assert list(explanation.tags) == [t.tag for t in prediction.tags]
    assert any(explanation.tags.values())
    _check_spans(text, explanation.tags)
    assert explanation.paragraphs is not None
    for evidence in explanation.paragraphs:
        _check_spans(text, evidence)


def test_traditional_and_full_width_spans_cover_the_original_characters(chars_model) -> None:
    text = TEXTS["traditional"]
    _, explanation = _evidence_of(chars_model, text, n_terms=20)
    written = {
        e.term: {text[a:b] for a, b in e.spans} for es in explanation.tags.values() for e in es
    }
    assert written["教育"] == {"教育"}
    # the simplified terms are found written in traditional characters (權利, 兒童, 學校)
    assert any(t not in w for t, w in written.items()), written
    assert all(len(t) == len(x) for t, w in written.items() if " " not in t for x in w)
    text = TEXTS["full-width"]
    _, explanation = _evidence_of(chars_model, text, n_terms=20)
    spans = {
        e.term: {text[a:b] for a, b in e.spans} for es in explanation.tags.values() for e in es
    }
    if "unesco" in spans:
        assert spans["unesco"] == {"ＵＮＥＳＣＯ"}


def test_a_segmented_word_pair_spans_its_space(chars_model) -> None:
    text = TEXTS["segmented"]
    _, explanation = _evidence_of(chars_model, text, n_terms=20)
    pairs = [e for es in explanation.tags.values() for e in es if " " in e.term]
    for e in pairs:
        assert all(" " in text[a:b] for a, b in e.spans), e


def test_contribution_is_value_times_weight(words_model) -> None:
    """Word unigrams only: each term's contribution is its one feature's x × w."""
    model = words_model
    text = TEXTS["raw"]
    prediction, explanation = _evidence_of(model, text, n_terms=20, paragraphs=False)
    features, weights = model.scorer.features, model.scorer.weights
    (prepared,) = prepare_text(text, model.config.text).tokens
    x = features.transform([prepared]).toarray()[0]
    vocabulary = features.blocks[0].vocabulary
    for tag, items in explanation.tags.items():
        j = model.labels.index(tag)
        for e in items:
            col = vocabulary[e.term]
            assert e.contribution == pytest.approx(x[col] * weights.coef[col, j], abs=1e-6)
        # the listed terms are the highest positive ones
        row = x * weights.coef[:, j].toarray().ravel()
        best = np.sort(row[row > 0])[::-1][: len(items)]
        assert [e.contribution for e in items] == pytest.approx(best.tolist(), abs=1e-6)


@pytest.mark.parametrize("aggregation", ["mean", "weighted", "max", "whole", "mean+whole"])
def test_document_evidence_follows_the_aggregation(chars_model, aggregation: str) -> None:
    """Two equal paragraphs: under mean, weighted and max the document's evidence is each
    paragraph's (spans from both); under whole it is the whole text's."""
    paragraph = "各国应加强学校教育，提高女童入学率，預防犯罪和刑事司法。" * 12
    text = f"{paragraph}\n{paragraph}"
    cfg = chars_model.config.text
    assert len(prepare_text(text, cfg).tokens) == 2
    scorer, labels = chars_model.scorer, chars_model.labels
    tag = labels[0]
    (doc,) = explain_texts(
        scorer.features,
        scorer.weights,
        labels,
        cfg,
        [text],
        [[tag]],
        [[[tag], [tag]]],
        aggregation,
        20,
    )
    _check_spans(text, doc.tags)
    assert doc.paragraphs is not None
    first, second = (p[tag] for p in doc.paragraphs)
    assert [(e.term, e.contribution) for e in first] == [(e.term, e.contribution) for e in second]
    if aggregation in ("mean", "weighted", "max"):
        assert [(e.term, e.contribution) for e in doc.tags[tag]] == [
            (e.term, e.contribution) for e in first
        ]
        for d, p in zip(doc.tags[tag], first, strict=True):
            if aggregation == "max":  # the paragraph of highest decision value: the first
                assert d.spans == p.spans
            else:
                assert set(p.spans) < set(d.spans) or len(d.spans) == MAX_SPANS
    assert all(b <= len(paragraph) for e in first for _, b in e.spans)
    assert all(a > len(paragraph) for e in second for a, _ in e.spans)
    if aggregation == "max":
        return
    assert all(e.spans[-1][0] >= len(paragraph) for e in doc.tags[tag] if len(e.spans) < MAX_SPANS)


def test_explanations_bound_their_terms(model) -> None:
    with pytest.raises(ValueError, match="n_terms"):
        explain_predictions(model, ["教育"], model.predict(["教育"]), n_terms=0)
    _, explanation = _evidence_of(model, TEXTS["raw"], n_terms=2)
    assert all(len(es) <= 2 for es in explanation.tags.values())


texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=30).map("".join)


@settings(max_examples=150)
@given(texts)
def test_any_text_spans_in_bounds_and_slice_back(chars_model, text: str) -> None:
    predictions = chars_model.predict([text], paragraphs=True)
    (explanation,) = explain_predictions(chars_model, [text], predictions)
    _check_spans(text, explanation.tags)
    for evidence in explanation.paragraphs or []:
        _check_spans(text, evidence)


def test_explaining_many_tags_can_be_stopped_between_tags(words_model) -> None:
    """The request's budget reaches inside one text's explanation: ``checkpoint`` comes
    before each tag's evidence (of the document and of every paragraph), so a text of many
    paragraphs explained for every label stops at the budget, not after all of them."""
    text = "\n".join(["各国应加强学校教育，提高女童入学率，預防犯罪和刑事司法。" * 12] * 4)
    labels = list(words_model.labels)
    n_par = len(prepare_text(text, words_model.config.text).tokens)
    assert n_par == 4 and len(labels) >= 3
    scorer = words_model.scorer
    calls = []

    def explain(checkpoint) -> None:
        explain_texts(
            scorer.features,
            scorer.weights,
            labels,
            words_model.config.text,
            [text],
            [labels],
            [[labels] * n_par],
            checkpoint=checkpoint,
        )

    explain(lambda: calls.append(1))
    assert len(calls) >= len(labels) * (1 + n_par)

    class Stop(Exception):
        pass

    def budget() -> None:
        calls.append(1)
        if len(calls) > 5:
            raise Stop

    calls.clear()
    with pytest.raises(Stop):
        explain(budget)
    assert len(calls) == 6  # stopped at the first call over
