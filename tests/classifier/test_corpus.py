"""Corpus reading: seed and JSONL formats, folders, skip reports, strict mode, laziness."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from classifier.corpus import Document, ReadReport, parse_tags, read_corpus
from classifier.errors import CorpusFormatError


def read_all(paths, **kwargs) -> tuple[list[Document], ReadReport]:
    report = ReadReport()
    docs = list(read_corpus([str(p) for p in paths], report=report, **kwargs))
    return docs, report


# --- seed format -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("%%%EDUCATION|PUBLIC HEALTH|", ("EDUCATION", "PUBLIC HEALTH")),
        ("%%%EDUCATION|PUBLIC HEALTH", ("EDUCATION", "PUBLIC HEALTH")),  # trailing | optional
        ("%%% EDUCATION | PUBLIC HEALTH |", ("EDUCATION", "PUBLIC HEALTH")),  # stripped
        ("%%%A||B| |", ("A", "B")),  # empty tags dropped
        ("%%%B|A|B|A|", ("B", "A")),  # duplicates dropped, first order kept
        ("%%%WOMEN'S RIGHTS|", ("WOMEN'S RIGHTS",)),
        ("%%%A|\t", ("A",)),
    ],
)
def test_seed_header_tags(tmp_path: Path, header: str, tags: tuple[str, ...]) -> None:
    path = tmp_path / "doc.txt"
    path.write_text(f"{header}\n\n正文内容。", encoding="utf-8")
    docs, report = read_all([path])
    assert docs == [Document("doc.txt", "正文内容。", tags)]
    assert report.skipped == []


def test_parse_tags_accepts_header_or_body() -> None:
    assert parse_tags("%%%A|B|") == ("A", "B")
    assert parse_tags("A|B|") == ("A", "B")
    assert parse_tags("%%%") == ()


def test_seed_bom_crlf_and_multiline_text(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(
        b"\xef\xbb\xbf%%%A|B|\r\n\r\n" + "第一行\r\n第二行\r\n\r\n第三行 with Latin\r\n".encode()
    )
    docs, report = read_all([path])
    assert report.skipped == []
    assert docs == [Document("bom.txt", "第一行\n第二行\n\n第三行 with Latin\n", ("A", "B"))]


def test_seed_text_keeps_lines_exactly(tmp_path: Path, write_seed) -> None:
    text = " 1. 联合国 的 报告 。 2. 第二段\n第二行\n  缩进的第三行"
    path = write_seed(tmp_path / "seg.txt", "A|", text)
    (doc,) = read_corpus([path])
    assert doc.text == text


def test_seed_without_tags_is_allowed_when_tags_not_required(tmp_path: Path) -> None:
    path = tmp_path / "plain.txt"
    path.write_text("没有标题行的文本\n第二行", encoding="utf-8")
    (doc,) = read_corpus([path], require_tags=False)
    assert doc == Document("plain.txt", "没有标题行的文本\n第二行", ())


def test_seed_line_two_must_be_blank(tmp_path: Path) -> None:
    path = tmp_path / "noblank.txt"
    path.write_text("%%%A|\n正文直接开始", encoding="utf-8")
    docs, report = read_all([path])
    assert docs == []
    assert [s.reason.split(":")[0] for s in report.skipped] == ["no blank line"]


# --- JSONL -------------------------------------------------------------------------------


def test_jsonl_records(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps(
            {"id": "d1", "text": "第一篇", "tags": ["A", " B ", "A", ""]}, ensure_ascii=False
        ),
        "",
        json.dumps({"id": 7, "text": "第二篇", "tags": ["C"]}, ensure_ascii=False),
        json.dumps({"text": "第三篇", "tags": ["A"]}, ensure_ascii=False),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    docs, report = read_all([path])
    assert report.skipped == []
    assert docs == [
        Document("d1", "第一篇", ("A", "B")),
        Document("7", "第二篇", ("C",)),
        Document(f"{path}:4", "第三篇", ("A",)),  # id defaults to the line's position
    ]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ('{"id": "x", "text": "t", "tags": ["A"]', "invalid JSON"),
        ('["not", "an", "object"]', "invalid record"),
        ('{"id": "x", "text": 5, "tags": ["A"]}', "invalid field"),
        ('{"id": "x", "text": "t", "tags": "A"}', "invalid field"),
        ('{"id": "x", "text": "t", "tags": ["A", 1]}', "invalid field"),
        ('{"id": [1], "text": "t", "tags": ["A"]}', "invalid field"),
        ('{"id": "x", "text": "t", "tags": []}', "empty tag list"),
        ('{"id": "x", "text": "   ", "tags": ["A"]}', "empty text"),
    ],
)
def test_jsonl_bad_record_is_skipped_with_line_number(tmp_path: Path, line: str, kind: str) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"id": "ok", "text": "好", "tags": ["A"]})
    path.write_text(f"{good}\n{line}\n{good}\n", encoding="utf-8")
    docs, report = read_all([path])
    assert [d.id for d in docs] == ["ok", "ok"]
    assert len(report.skipped) == 1
    skip = report.skipped[0]
    assert skip.source == f"{path}:2"
    assert skip.reason.split(":")[0] == kind


# --- folders and several inputs ----------------------------------------------------------


def test_folder_recursion_is_sorted_with_relative_ids(tmp_path: Path, write_seed) -> None:
    root = tmp_path / "corpus"
    for rel in ("d/z.txt", "d/a.txt", "b.txt", "c/sub/x.txt", "a.txt", "c/m.txt"):
        write_seed(root / rel, "A|", f"文本 {rel}")
    (root / "notes.md").write_text("ignored", encoding="utf-8")
    (root / "c" / "data.csv").write_text("ignored", encoding="utf-8")
    docs, report = read_all([root])
    assert [d.id for d in docs] == [
        "a.txt",
        "b.txt",
        "c/m.txt",
        "c/sub/x.txt",
        "d/a.txt",
        "d/z.txt",
    ]
    assert [d.text for d in docs] == [f"文本 {d.id}" for d in docs]
    assert report.n_documents == 6 and report.skipped == []


def test_folder_includes_jsonl_files(tmp_path: Path, write_seed) -> None:
    root = tmp_path / "corpus"
    write_seed(root / "a.txt", "A|", "种子")
    (root / "sub").mkdir()
    (root / "sub" / "more.jsonl").write_text(
        json.dumps({"id": "j1", "text": "行", "tags": ["B"]}) + "\n", encoding="utf-8"
    )
    docs, _ = read_all([root])
    assert [(d.id, d.tags) for d in docs] == [("a.txt", ("A",)), ("j1", ("B",))]


def test_several_inputs_are_read_in_order(tmp_path: Path, write_seed) -> None:
    one = write_seed(tmp_path / "one.txt", "A|", "一")
    folder = tmp_path / "folder"
    write_seed(folder / "two.txt", "B|", "二")
    jsonl = tmp_path / "three.jsonl"
    jsonl.write_text(json.dumps({"id": "three", "text": "三", "tags": ["C"]}) + "\n", "utf-8")
    docs, report = read_all([jsonl, one, folder])
    assert [(d.id, d.text, d.tags) for d in docs] == [
        ("three", "三", ("C",)),
        ("one.txt", "一", ("A",)),
        ("two.txt", "二", ("B",)),
    ]
    assert report.n_documents == 3


def test_missing_input_raises(tmp_path: Path) -> None:
    with pytest.raises(CorpusFormatError) as info:
        list(read_corpus([tmp_path / "nope"]))
    assert info.value.source == str(tmp_path / "nope")
    assert "no such file" in info.value.reason


# --- bad documents -----------------------------------------------------------------------


def make_bad_corpus(root: Path, write_seed) -> dict[str, str]:
    """A folder with two good documents and one of each kind of bad one; source -> kind."""
    write_seed(root / "00_good.txt", "A|B|", "好的文本。")
    write_seed(root / "99_good.txt", "B|", "另一个好的文本。")
    (root / "01_noheader.txt").write_text("没有标题行\n\n文本", encoding="utf-8")
    write_seed(root / "02_notags.txt", "| |", "有文本但没有标签")
    write_seed(root / "03_notext.txt", "A|", "  \n \n")
    (root / "04_gbk.txt").write_bytes("%%%A|\n\n中文文本".encode("gbk"))
    (root / "05_binary.txt").write_bytes(b"%%%A|\n\n" + bytes(range(256)) * 8)
    (root / "06_empty.txt").write_bytes(b"")
    (root / "07_dir.txt").mkdir()
    os.symlink("08_loop.txt", root / "08_loop.txt")
    good = json.dumps({"id": "j1", "text": "行", "tags": ["A"]})
    (root / "09_records.jsonl").write_text(f"{good}\n{{oops\n", encoding="utf-8")
    return {
        str(root / "01_noheader.txt"): "no header",
        str(root / "02_notags.txt"): "empty tag list",
        str(root / "03_notext.txt"): "empty text",
        str(root / "04_gbk.txt"): "not UTF-8",
        str(root / "05_binary.txt"): "binary file",
        str(root / "06_empty.txt"): "empty file",
        str(root / "07_dir.txt"): "not a file",
        str(root / "08_loop.txt"): "unreadable",
        str(root / "09_records.jsonl") + ":2": "invalid JSON",
    }


def test_bad_documents_are_each_reported(tmp_path: Path, write_seed) -> None:
    root = tmp_path / "corpus"
    expected = make_bad_corpus(root, write_seed)
    docs, report = read_all([root])
    assert [d.id for d in docs] == ["00_good.txt", "j1", "99_good.txt"]
    got = {s.source: s.reason.split(":")[0] for s in report.skipped}
    assert got == expected
    assert len(report.skipped) == len(expected)
    # every input item is either read or skipped
    assert report.n_documents + len(report.skipped) == 3 + len(expected)
    summary = report.summary()
    assert summary["documents_read"] == 3
    assert summary["documents_skipped"] == len(expected)
    assert summary["skipped_by_reason"] == dict.fromkeys(expected.values(), 1)
    assert sum(summary["skipped_by_reason"].values()) == summary["documents_skipped"]


def test_gbk_reason_names_byte_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "gbk.txt"
    path.write_bytes(b"%%%A|\n\n" + "中文".encode("gbk"))
    _, report = read_all([path])
    assert [s.reason for s in report.skipped] == ["not UTF-8: byte 0xd6 at offset 7"]


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 8,  # binary: NUL bytes and invalid UTF-8
        b"%%%A|\n\n" + b"\x00\x01\x02\x03" * 64,  # valid UTF-8 but mostly NUL
        "%%%A|\n\n联合国的报告".encode("utf-16-le"),
        "%%%A|\n\n联合国的报告".encode("utf-16"),
    ],
)
def test_binary_files_are_skipped(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(data)
    docs, report = read_all([path])
    assert docs == []
    assert [(s.source, s.reason.split(":")[0]) for s in report.skipped] == [
        (str(path), "binary file")
    ]


def test_symlink_loop_given_directly_is_skipped(tmp_path: Path) -> None:
    os.symlink("a.txt", tmp_path / "a.txt")
    docs, report = read_all([tmp_path / "a.txt"])
    assert docs == []
    assert [(s.source, s.reason.split(":")[0]) for s in report.skipped] == [
        (str(tmp_path / "a.txt"), "unreadable")
    ]


def test_strict_raises_on_first_bad_file(tmp_path: Path, write_seed) -> None:
    root = tmp_path / "corpus"
    write_seed(root / "a.txt", "A|", "好")
    (root / "b.txt").write_text("no header here", encoding="utf-8")
    (root / "c.txt").write_bytes(b"")
    seen = []
    with pytest.raises(CorpusFormatError) as info:
        for doc in read_corpus([root], strict=True):
            seen.append(doc.id)
    assert seen == ["a.txt"]
    assert info.value.source == str(root / "b.txt")
    assert str(root / "b.txt") in str(info.value)
    assert info.value.reason.startswith("no header")


def test_strict_names_jsonl_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a", "text": "t", "tags": ["A"]}\nnot json\n', encoding="utf-8")
    with pytest.raises(CorpusFormatError) as info:
        list(read_corpus([path], strict=True))
    assert info.value.source == f"{path}:2"


# --- report and laziness -----------------------------------------------------------------


def test_report_hash_depends_on_content(tmp_path: Path, write_seed) -> None:
    path = write_seed(tmp_path / "a.txt", "A|", "文本")
    _, first = read_all([path])
    _, again = read_all([path])
    assert first.sha256 == again.sha256
    write_seed(path, "B|", "文本")
    _, changed = read_all([path])
    assert changed.sha256 != first.sha256
    assert first.summary()["sha256"] == first.sha256


def test_reader_is_lazy(tmp_path: Path, write_seed) -> None:
    root = tmp_path / "corpus"
    write_seed(root / "a.txt", "A|", "第一篇")
    write_seed(root / "b.txt", "A|", "原来的第二篇")
    report = ReadReport()
    docs = read_corpus([root], report=report)
    first = next(docs)
    assert first.id == "a.txt"
    assert report.n_documents == 1
    # b.txt has not been read yet: what it holds now is what the reader will see
    write_seed(root / "b.txt", "A|", "后来改写的第二篇")
    second = next(docs)
    assert second.text == "后来改写的第二篇"
    assert list(docs) == []
    assert report.n_documents == 2


def test_reader_does_nothing_until_iterated(tmp_path: Path) -> None:
    docs = read_corpus([tmp_path / "does-not-exist-yet"])  # no error yet: a generator
    with pytest.raises(CorpusFormatError):
        next(docs)
