"""The demo corpus `make run` trains on (data/sample): its promised shape, that it is the
generator's output, and that a model trained on it tags the seed document with its own tags.

Only these tests read data/sample; every other test trains on tests/data/sample, so the demo
can change without touching them. The promises checked are the README's, not the corpus's
details: hundreds of documents, a few dozen tags, the seed's nine among them."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "sample"
# the seed document of the shared workspace, when there is one beside the checkout
SEED_FILE = ROOT.parent / "shared" / "seed" / "000_b5b1b36d3f723d46.txt"
SEEDS_TAGS = {
    "CRIME PREVENTION",
    "CRIMINAL JUSTICE",
    "INTERNATIONAL COOPERATION",
    "TRANSNATIONAL CRIME",
    "ORGANIZED CRIME",
    "TECHNICAL COOPERATION",
    "RULE OF LAW",
    "DATA COLLECTION",
    "RECOMMENDATIONS",
}
# A short report in the seed's kind, written for this test (not taken from the seed).
PARAPHRASE = "\n".join(
    [
        "联合国预防犯罪和刑事司法方案：秘书长关于毒品和犯罪问题办公室技术合作活动的报告",
        "摘要：本报告说明毒品和犯罪问题办公室在过去一年中如何协助会员国预防犯罪、"
        "改革刑事司法系统和打击跨国有组织犯罪，并提出供大会审议的建议。",
        "1. 没有安全和公正的司法，就谈不上可持续发展。"
        "毒品和犯罪问题办公室把加强法治作为工作的核心，帮助各国建立可预期、透明的法律制度。",
        "2. 本报告期内，又有几个国家加入了《联合国打击跨国有组织犯罪公约》及其议定书。"
        "办公室为起草执行立法提供了咨询，并为检察官举办了调查有组织犯罪集团的讲习班。",
        "3. 为便利刑事事项的国际合作，办公室支持区域检察官网络与中央主管机关直接联系，"
        "使引渡和司法协助请求得到更快处理，并与国际刑警组织共享信息。",
        "4. 在非洲、亚洲和拉丁美洲，办公室通过国别方案和区域方案提供技术援助，"
        "内容包括警务改革、监狱管理、少年司法和被害人保护。",
        "5. 在预防犯罪方面，办公室协助一些城市开展地方安全评估，并推广面向青年的预防方案。",
        "6. 可靠的犯罪统计是制定政策的基础。办公室与各国统计机构合作推广国际犯罪分类，"
        "开展被害情况调查，并收集关于凶杀和人口贩运的数据。",
        "7. 办公室的经费大部分来自指定用途的自愿捐款，长期规划因此十分困难。",
        "8. 建议大会请会员国继续支持毒品和犯罪问题办公室的技术合作工作，"
        "鼓励各国批准并执行相关公约，并为数据收集和研究提供资源。",
    ]
)


def test_demo_corpus_reads_without_skips_and_has_the_promised_shape() -> None:
    from classifier.corpus import ReadReport, read_corpus

    report = ReadReport()
    docs = list(read_corpus([DEMO], report=report))
    assert report.skipped == []
    assert len(docs) >= 300  # hundreds of documents
    tags = Counter(tag for doc in docs for tag in doc.tags)
    assert 30 <= len(tags) <= 60  # a few dozen tags
    assert SEEDS_TAGS <= set(tags)
    assert all(tag == tag.upper() for tag in tags)  # thesaurus terms, upper case
    assert all(doc.tags and doc.text.strip() for doc in docs)
    assert min(tags.values()) >= 2  # every tag can be learned (min_label_docs)
    # the seed's layout (one line, pre-segmented, a leading space) is among them
    assert any(doc.text.startswith(" ") and "\n" not in doc.text.strip() for doc in docs)


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory: pytest.TempPathFactory):
    """A model trained on the demo corpus with the default settings, as `make run` does."""
    from classifier.registry import load_model
    from training.train import train

    models_dir = tmp_path_factory.mktemp("demo-models")
    train([str(DEMO)], models_dir, name="default", jobs=1)
    return load_model(models_dir, "default").model


def _suggested(model, text: str) -> list[str]:
    """The tags the page shows: the model's tuned threshold, at least one tag."""
    (prediction,) = model.predict([text])
    return [t.tag for t in prediction.tags]


def _ranked(model, text: str, k: int) -> list[str]:
    (prediction,) = model.predict([text], top_k=k, threshold=0.0)
    return [t.tag for t in prediction.tags]


def _segmented(text: str) -> str:
    """The seed's form of ``text``: one line, words separated by spaces, inline numbers."""
    import jieba

    jieba.setLogLevel(60)
    return " " + " ".join(w for w in jieba.cut(text.replace("\n", " ")) if w.strip())


@pytest.mark.slow
def test_a_model_trained_on_the_demo_tags_a_seed_like_report_with_the_seeds_tags(
    demo_model,
) -> None:
    suggested = _suggested(demo_model, PARAPHRASE)
    assert set(suggested) <= SEEDS_TAGS, suggested  # nothing unrelated
    assert len(suggested) >= 5, suggested  # most of the nine
    assert _suggested(demo_model, _segmented(PARAPHRASE)) == suggested


@pytest.mark.slow
@pytest.mark.skipif(not SEED_FILE.is_file(), reason=f"no seed document at {SEED_FILE}")
def test_a_model_trained_on_the_demo_tags_the_seed_document_with_its_own_tags(
    demo_model,
) -> None:
    header, _, text = SEED_FILE.read_text(encoding="utf-8-sig").split("\n", 2)
    assert set(header[3:].strip("|").split("|")) == SEEDS_TAGS
    suggested = _suggested(demo_model, text)
    assert set(suggested) <= SEEDS_TAGS, suggested
    assert len(suggested) >= 5, suggested
    # and the nine come first: the top nine are (nearly) all the seed's own tags
    assert len(set(_ranked(demo_model, text, 9)) & SEEDS_TAGS) >= 7


@pytest.mark.slow
def test_the_demo_corpus_is_the_generators_output() -> None:
    """data/sample is regenerated, never edited by hand: `data/make_sample.py --check`."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "data" / "make_sample.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
