"""Corpus reading: seed and JSONL formats, folders, skip reports, strict mode, laziness."""

from __future__ import annotations

import codecs
import io
import json
import os
import socket
import sys
import threading
import time
import tracemalloc
from collections import deque
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier import corpus
from classifier.corpus import (
    Document,
    ReadReport,
    parse_tags,
    read_corpus,
    read_inputs,
    read_stdin,
)
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
        "%%%A|\n\n联合国的报告".encode("utf-16-le"),  # UTF-16 without a BOM: no way to tell
        # (UTF-16 with a BOM is read now: test_utf16_and_utf32_with_a_bom_are_read)
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


# --- non-regular files: skipped with a reason, never opened in a way that blocks -----------


def within(seconds: float, fn):
    """``fn()`` run in a thread; the test fails, rather than hangs, if it blocks."""
    result: dict = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "reading blocked"
    if "error" in result:
        raise result["error"]
    return result.get("value")


def make_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


SPECIAL = {
    "fifo": ("a FIFO (named pipe)", lambda p: os.mkfifo(p)),
    "char device": ("a character device", lambda p: os.symlink("/dev/zero", p)),
    "tty-like device": ("a character device", lambda p: os.symlink("/dev/tty", p)),
    "null device": ("a character device", lambda p: os.symlink("/dev/null", p)),
    "socket": ("a socket", make_socket),
    "fifo via symlink": (
        "a FIFO (named pipe)",
        lambda p: (os.mkfifo(f"{p}.fifo"), os.symlink(f"{p}.fifo", p)),
    ),
}
BLOCK_DEVICES = [
    f"/dev/{n}" for n in ("loop0", "sda", "vda", "nvme0n1") if os.path.exists(f"/dev/{n}")
]
if BLOCK_DEVICES:
    SPECIAL["block device"] = ("a block device", lambda p: os.symlink(BLOCK_DEVICES[0], p))


@pytest.mark.parametrize("kind", list(SPECIAL))
@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_special_files_in_a_folder_are_skipped_with_their_kind(
    tmp_path: Path, write_seed, kind: str, suffix: str
) -> None:
    root = tmp_path / "corpus"
    write_seed(root / "a.txt", "A|", "好的文本")
    what, make = SPECIAL[kind]
    special = root / f"b{suffix}"
    keep = make(special)
    write_seed(root / "c.txt", "B|", "另一个")
    docs, report = within(10, lambda: read_all([root]))
    assert [d.id for d in docs] == ["a.txt", "c.txt"]
    assert [(s.source, s.reason) for s in report.skipped] == [
        (str(special), f"not a file: is {what}")
    ]
    assert report.skipped_by_reason == {"not a file": 1}
    del keep


@pytest.mark.parametrize("kind", list(SPECIAL))
def test_special_files_named_directly(tmp_path: Path, kind: str) -> None:
    what, make = SPECIAL[kind]
    path = tmp_path / "input.txt"
    keep = make(path)
    docs, report = within(10, lambda: read_all([path]))
    assert docs == [] and [s.reason for s in report.skipped] == [f"not a file: is {what}"]
    with pytest.raises(CorpusFormatError) as info:  # `tagger predict FILE` stops at it
        within(10, lambda: list(read_inputs([str(path)], io.BytesIO())))
    assert info.value.reason == f"not a file: is {what}"
    del keep


def test_a_file_swapped_for_a_fifo_after_the_check_is_not_waited_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: the path is a regular file when checked and a FIFO when opened."""
    regular = tmp_path / "regular.txt"
    regular.write_text("%%%A|\n\n文本", encoding="utf-8")
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(corpus.os, "stat", lambda p, *a, **k: real_stat(regular))
    docs, report = within(10, lambda: read_all([fifo]))
    assert docs == [] and [s.reason for s in report.skipped] == [
        "not a file: is a FIFO (named pipe)"
    ]


def test_a_file_grown_past_the_limit_while_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "grows.txt"
    path.write_bytes(b"%%%A|\n\n" + b"x" * 100)
    real_fstat = os.fstat

    class Small:  # the size the file had when it was checked
        def __init__(self, st):
            self.st_mode, self.st_size = st.st_mode, 10

    monkeypatch.setattr(corpus, "MAX_FILE_BYTES", 50)
    monkeypatch.setattr(corpus.os, "stat", lambda p, *a, **k: Small(real_fstat(os.open(p, 0))))
    monkeypatch.setattr(corpus.os, "fstat", lambda fd: Small(real_fstat(fd)))
    docs, report = read_all([path])
    assert docs == [] and [s.reason for s in report.skipped] == [
        "file too large: more than 50 bytes"
    ]


@pytest.mark.skipif(os.getuid() == 0, reason="root reads any folder")
def test_an_unreadable_folder_is_reported(tmp_path: Path, write_seed) -> None:
    root = tmp_path / "corpus"
    write_seed(root / "a.txt", "A|", "文本")
    write_seed(root / "locked" / "b.txt", "A|", "文本")
    (root / "locked").chmod(0)
    try:
        docs, report = read_all([root])
    finally:
        (root / "locked").chmod(0o755)
    assert [d.id for d in docs] == ["a.txt"]
    assert [s.reason.split(":")[0] for s in report.skipped] == ["unreadable folder"]


def test_file_names_that_are_not_utf8_are_read_and_named_escaped(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    raw = os.fsencode(root) + b"/\xff\xfe-\xe6\x96.txt"  # a GBK/Latin-1 name on a UTF-8 system
    with open(raw, "wb") as f:
        f.write("%%%A|\n\n文本".encode())
    (root / "b.txt").write_bytes(b"\x00" * 100)
    os.rename(root / "b.txt", os.fsencode(root) + b"/b\xff.txt")
    docs, report = read_all([root])
    assert [d.id for d in docs] == ["\\xff\\xfe-\\xe6\\x96.txt"]
    assert [s.source for s in report.skipped] == [f"{root}/b\\xff.txt"]
    json.dumps(report.summary(), ensure_ascii=False).encode("utf-8")  # writable as UTF-8


# --- encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
)
def test_utf16_and_utf32_with_a_bom_are_read(tmp_path: Path, encoding: str) -> None:
    bom = "" if encoding in ("utf-16", "utf-32") else "\ufeff"  # those two write their own
    seed = tmp_path / "doc.txt"
    seed.write_bytes((bom + "%%%A|B|\r\n\r\n联合国的报告 😀\r\n第二行").encode(encoding))
    records = tmp_path / "docs.jsonl"
    lines = [
        {"id": "r1", "text": "第一篇", "tags": ["A"]},
        {"id": "r2", "text": "𠀀", "tags": ["B"]},
    ]
    body = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in lines)
    records.write_bytes((bom + body + "\n").encode(encoding))
    docs, report = read_all([seed, records])
    assert report.skipped == []
    assert docs == [
        Document("doc.txt", "联合国的报告 😀\n第二行", ("A", "B")),
        Document("r1", "第一篇", ("A",)),
        Document("r2", "𠀀", ("B",)),
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            codecs.BOM_UTF16_LE + "%%%A|\n\n文".encode("utf-16-le") + b"\x00\xd8" + b"a\x00",
            "not UTF-16-LE: illegal UTF-16 surrogate at offset 18",
        ),
        (
            codecs.BOM_UTF16_BE + "%%%A|\n\n文".encode("utf-16-be") + b"\xdc\x00",
            "not UTF-16-BE: illegal encoding at offset 18",
        ),
        (
            codecs.BOM_UTF32_LE + "%%%A|\n\n".encode("utf-32-le") + b"\x00\x00\x11\x00",
            "not UTF-32-LE: code point not in range(0x110000) at offset 32",
        ),
        (
            codecs.BOM_UTF16_LE + "%%%A|\n\n文".encode("utf-16-le") + b"x",
            "not UTF-16-LE: truncated data at offset 18",
        ),
    ],
)
def test_bad_utf16_and_utf32_are_named_with_the_offset(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    for name in ("doc.txt", "doc.jsonl"):
        path = tmp_path / name
        path.write_bytes(data)
        docs, report = read_all([path])
        assert docs == []
        assert [s.reason for s in report.skipped][-1:] == [reason], name


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("%%%教育|\n\n文本".encode("gbk"), "not UTF-8: byte 0xbd at offset 3"),  # in the header
        (b"%%%A|\n \xa0\n\xe6\x96\x87", "not UTF-8: byte 0xa0 at offset 7"),  # line 2
        ("没有标题".encode("gb18030"), "not UTF-8: byte 0xd3 at offset 2"),  # C3 BB is "û"
        (b"%%%A|\n\nabc" + "中文".encode("big5"), "not UTF-8: byte 0xa4 at offset 10"),
        (
            b"\xef\xbb\xbf%%%A|\n\n\xff",
            "not UTF-8: byte 0xff at offset 10",
        ),  # offsets count the BOM
    ],
)
def test_other_encodings_name_the_byte_and_offset(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "doc.txt"
    path.write_bytes(data)
    _, report = read_all([path])
    assert [s.reason for s in report.skipped] == [reason]


def test_a_jsonl_line_in_another_encoding_is_skipped_alone(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    good = json.dumps({"id": "ok", "text": "好", "tags": ["A"]}).encode()
    bad = json.dumps({"id": "gbk", "text": "中文", "tags": ["A"]}, ensure_ascii=False).encode("gbk")
    path.write_bytes(good + b"\n" + bad + b"\n" + good + b"\n")
    docs, report = read_all([path])
    assert [d.id for d in docs] == ["ok", "ok"]
    offset = len(good) + 1 + bad.index(b"\xd6")
    assert [(s.source, s.reason) for s in report.skipped] == [
        (f"{path}:2", f"not UTF-8: byte 0xd6 at offset {offset}")
    ]


def test_seed_with_cr_line_ends_and_unicode_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "mac.txt"
    path.write_bytes("%%%A|\r\u3000\r第一行\r第二行".encode())
    docs, _ = read_all([path])
    assert docs == [Document("mac.txt", "第一行\n第二行", ("A",))]


def test_header_too_long_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus, "MAX_HEADER_CHARS", 100)
    path = tmp_path / "doc.txt"
    path.write_text("%%%" + "A|" * 60 + "\n\n文本", encoding="utf-8")
    _, report = read_all([path])
    assert [s.reason.split(":")[0] for s in report.skipped] == ["header too long"]
    path.write_text("%%%" + "A|" * 40 + "\n\n文本", encoding="utf-8")
    docs, _ = read_all([path])
    assert docs[0].tags == ("A",)


# --- bad JSONL lines: skipped and reported, the rest read --------------------------------------

GOOD = json.dumps({"id": "ok", "text": "好", "tags": ["A"]})


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            '{"id": "x", "text": "\\ud800", "tags": ["A"]}',
            "invalid field: 'text' holds a lone surrogate U+D800",
        ),
        (
            '{"id": "x", "text": "ab\\udfff", "tags": ["A"]}',
            "invalid field: 'text' holds a lone surrogate U+DFFF at character 2",
        ),
        (
            '{"id": "x", "text": "\\ud83dx", "tags": ["A"]}',
            "invalid field: 'text' holds a lone surrogate U+D83D",
        ),
        (
            '{"id": "x", "text": "\\ude00\\ud83d", "tags": ["A"]}',
            "invalid field: 'text' holds a lone surrogate U+DE00",
        ),
        (
            '{"id": "\\udc80", "text": "t", "tags": ["A"]}',
            "invalid field: 'id' holds a lone surrogate U+DC80",
        ),
        (
            '{"id": "x", "text": "t", "tags": ["A", "\\udbff"]}',
            "invalid field: 'tags' holds a lone surrogate U+DBFF",
        ),
        (
            '{"id": "x", "text": "t", "tags": ["A"], "id2": 1' + "0" * 5000 + "}",
            "invalid JSON: Exceeds the limit",
        ),
        ("[" * 100_000 + "]" * 100_000, "invalid JSON: nested too deeply"),
        ('{"id": "x", "text": null, "tags": ["A"]}', "invalid field: 'text' must be a string"),
        (
            '{"id": 1.5, "text": "t", "tags": ["A"]}',
            "invalid field: 'id' must be a string or an integer",
        ),
        (
            '{"id": "x", "text": "t", "tags": {"A": 1}}',
            "invalid field: 'tags' must be a list of strings",
        ),
        (
            '{"id": "x", "text": "t", "tags": [["A"]]}',
            "invalid field: 'tags' must be a list of strings",
        ),
        ('{"id": "x", "text": ["t"], "tags": ["A"]}', "invalid field: 'text' must be a string"),
        ("NaN", "invalid record: expected a JSON object"),
        ('"just a string"', "invalid record: expected a JSON object"),
        ("{\x00}", "invalid JSON"),
        ('{"text": "a\nb"}', "invalid JSON"),  # a raw line break splits the record
    ],
)
def test_bad_jsonl_lines_are_skipped_with_their_number(
    tmp_path: Path, line: str, reason: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{GOOD}\n{line}\n{GOOD}\n", encoding="utf-8", errors="surrogatepass")
    docs, report = read_all([path])
    assert [d.id for d in docs] == ["ok", "ok"]
    assert report.skipped and all(s.source.startswith(f"{path}:") for s in report.skipped)
    assert report.skipped[0].source == f"{path}:2"
    assert report.skipped[0].reason.startswith(reason), report.skipped[0].reason
    # the same line on stdin is an error naming it, not an internal error
    with pytest.raises(CorpusFormatError) as info:
        list(read_stdin(io.BytesIO(f"{GOOD}\n{line}\n".encode("utf-8", "surrogatepass"))))
    assert info.value.source == "<stdin>:2" and info.value.reason.startswith(reason)


def test_surrogate_pairs_are_text(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text('{"id": "e", "text": "\\ud83d\\ude00 ok", "tags": ["\\ud840\\udc00"]}\n')
    docs, report = read_all([path])
    assert report.skipped == [] and docs == [Document("e", "😀 ok", ("𠀀",))]


def test_a_line_over_the_limit_is_skipped_and_the_next_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 64)  # the long line spans many chunks
    path = tmp_path / "long.jsonl"
    long = json.dumps({"id": "long", "text": "x" * 5000, "tags": ["A"]})
    path.write_text(f"{GOOD}\n{long}\n{GOOD}\n{long}", encoding="utf-8")
    docs, report = read_all([path])
    assert [d.id for d in docs] == ["ok", "ok"]
    assert [(s.source, s.reason) for s in report.skipped] == [
        (f"{path}:2", "line too long: over 1000 bytes"),
        (f"{path}:4", "line too long: over 1000 bytes"),
    ]


def test_a_binary_jsonl_file_is_skipped_whole(tmp_path: Path) -> None:
    path = tmp_path / "blob.jsonl"
    path.write_bytes(b"\x00" * 5000 + b"\n" + GOOD.encode())
    docs, report = read_all([path])
    assert docs == [] and [s.reason.split(":")[0] for s in report.skipped] == ["binary file"]


def test_many_bad_lines_are_counted_but_few_kept(tmp_path: Path) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_text("x\n" * 5000 + GOOD + "\n", encoding="utf-8")
    docs, report = read_all([path])
    assert [d.id for d in docs] == ["ok"]
    assert report.n_skipped == 5000 and len(report.skipped) == corpus.MAX_SKIPS_KEPT
    assert report.summary()["documents_skipped"] == 5000
    assert report.skipped_by_reason == {"invalid JSON": 5000}


@st.composite
def byte_streams(draw: st.DrawFn) -> tuple[bytes, list[int], int]:
    pieces = st.sampled_from(
        [b"\n", b"\r\n", b"\r", b" ", b"\t", b"\x0b", b"a", b"{}", b"\xe4\xb8\xad", b"\n\n\n"]
    )
    data = b"".join(draw(st.lists(pieces, max_size=60)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    return data, cuts, draw(st.integers(0, 12))


@given(byte_streams())
@settings(max_examples=500)
def test_line_splitting_matches_a_plain_split_for_any_chunking(case) -> None:
    data, cuts, limit = case
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    got = [
        (n, off, line)
        for n, off, line in corpus._lines(iter(chunks), limit)
        if line is None or line.strip()
    ]
    expected, offset = [], 0
    for n, line in enumerate(data.split(b"\n"), start=1):
        content = line[:-1] if line.endswith(b"\r") else line
        if n == data.count(b"\n") + 1 and not line:
            break
        if len(line) > limit:
            expected.append((n, offset, None))
        elif content.strip():
            expected.append((n, offset, content))
        offset += len(line) + 1
    # a line over the limit that is blank may be dropped or reported; compare the rest
    assert [g for g in got if g[2] is not None] == [e for e in expected if e[2] is not None]
    assert {g[0] for g in got if g[2] is None} <= {e[0] for e in expected if e[2] is None}
    assert {e[0] for e in expected if e[2] is None and data.split(b"\n")[e[0] - 1].strip()} <= {
        g[0] for g in got if g[2] is None
    }


# --- stdin: bounded like a file ---------------------------------------------------------------


class Endless(io.RawIOBase):
    """A stream that never ends (``yes``, a device), counting what was read."""

    def __init__(self, pattern: bytes) -> None:
        self.pattern, self.read_bytes = pattern, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n, k = len(b), len(self.pattern)
        phase = self.read_bytes % k
        b[:n] = (self.pattern * (n // k + 2))[phase : phase + n]
        self.read_bytes += n
        return n


def test_dev_zero_on_stdin_fails_fast() -> None:
    with open("/dev/zero", "rb") as zero:
        with pytest.raises(CorpusFormatError) as info:
            within(20, lambda: list(read_stdin(zero)))
    assert info.value.source == "<stdin>"
    assert info.value.reason.startswith("binary input: mostly NUL bytes")


@pytest.mark.parametrize("pattern", [b"y\n", "中文 ".encode(), b" ", b"\n", b'{"text": "t"}\n'])
def test_endless_stdin_stops_at_the_file_limit(
    monkeypatch: pytest.MonkeyPatch, pattern: bytes
) -> None:
    """Plain text is held up to the limit, then refused; JSONL records are tagged as they
    come, up to the limit."""
    limit = 3 * 1024 * 1024
    monkeypatch.setattr(corpus, "MAX_FILE_BYTES", limit)
    stream = Endless(pattern)
    count = [0]

    def drain() -> None:
        for _ in read_stdin(io.BufferedReader(stream)):
            count[0] += 1

    with pytest.raises(CorpusFormatError) as info:
        within(60, drain)
    assert info.value.source == "<stdin>"
    assert info.value.reason == f"input too large: more than {limit} bytes (the limit of a file)"
    assert stream.read_bytes <= limit + 2 * corpus.CHUNK_BYTES
    if pattern.startswith(b"{"):
        assert count[0] >= limit // len(pattern) - 2 * corpus.CHUNK_BYTES // len(pattern)


def test_stdin_at_the_limit_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus, "MAX_FILE_BYTES", 1000)
    (doc,) = read_stdin(io.BytesIO(b"a" * 1000))
    assert len(doc.text) == 1000
    with pytest.raises(CorpusFormatError, match="input too large"):
        list(read_stdin(io.BytesIO(b"a" * 1001)))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("\ufeff文本\r\n第二行".encode(), [Document("<stdin>", "文本\n第二行")]),
        ("文本".encode("utf-16"), [Document("<stdin>", "文本")]),  # the codec writes a BOM
        ("\ufeff文本".encode("utf-32-be"), [Document("<stdin>", "文本")]),
        (
            ("\ufeff" + json.dumps({"id": "a", "text": "t"})).encode("utf-16-le"),
            [Document("a", "t")],
        ),
        (b"  \n\n" + json.dumps({"text": "t"}).encode(), [Document("<stdin>:3", "t")]),
        (b" \n\t\n", []),
        (b"", []),
        (
            "line\u2028with a separator".encode(),
            [Document("<stdin>", "line\u2028with a separator")],
        ),
        # a JSON string may hold U+2028 raw: it is no line break
        (
            json.dumps({"text": "a\u2028b"}, ensure_ascii=False).encode(),
            [Document("<stdin>:1", "a\u2028b")],
        ),
    ],
)
def test_stdin_encodings_and_forms(data: bytes, expected: list[Document]) -> None:
    assert list(read_stdin(io.BytesIO(data))) == expected


def test_stdin_in_another_encoding_names_byte_and_offset() -> None:
    with pytest.raises(CorpusFormatError) as info:
        list(read_stdin(io.BytesIO("abc中文".encode("gbk"))))
    assert (info.value.source, info.value.reason) == ("<stdin>", "not UTF-8: byte 0xd6 at offset 3")


def test_stdin_as_text_without_a_buffer() -> None:
    assert list(read_stdin(io.StringIO("文本"))) == [Document("<stdin>", "文本")]


# --- linear time and memory in the file's size ---------------------------------------------------


def seconds(fn) -> float:
    """CPU seconds of ``fn`` (a busy machine's other jobs lengthen the wall clock, not this)."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


ADVERSARIAL = {
    # (the header limit is lifted for these: their cost is what is measured)
    "header of |": lambda n: "%%%" + "|" * (n // 4) + "\n\n文本",
    "header of tags": lambda n: "%%%" + "A|B|" * (n // 8) + "\n\n文本",
    "header of distinct tags": lambda n: "%%%" + "".join(f"T{i}|" for i in range(n // 24)) + "\n\n",
    "header of spaces": lambda n: "%%%A" + " " * n + "|\n\n文本",
    "one long line": lambda n: "%%%A|\n\n" + "联合国" * (n // 3),
    "long line 2": lambda n: "%%%A|\n" + " " * n + "x\n文本",
    "empty lines": lambda n: "%%%A|\n\n" + "\n" * n + "x",
    "CR line ends": lambda n: "%%%A|\r\r" + "x\r" * (n // 2),
    "CRLF": lambda n: "%%%A|\r\n\r\n" + "x\r\n" * (n // 3),
    "no header": lambda n: "x" * n,
}
ADVERSARIAL_JSONL = {
    "empty lines": lambda n: "\n" * n + GOOD,
    "bad lines between floods of empty lines": lambda n: ("x\n" + "\n" * 998) * (n // 1000),
    "records between floods of blank lines": lambda n: (GOOD + " \r\n" * 2000) * (n // 6000),
    "blank lines": lambda n: " \n" * (n // 2) + GOOD,
    "CRLF lines": lambda n: "\r\n" * (n // 2) + GOOD,
    "bad lines": lambda n: "x\n" * (n // 100),
    "one long record": lambda n: json.dumps({"text": "联" * (n // 3), "tags": ["A"]}),
    "long whitespace line": lambda n: " " * n + GOOD,
    "many tags": lambda n: json.dumps({"text": "t", "tags": ["A"] * (n // 5)}),
    "deep nesting": lambda n: "[" * (n // 10),
}


GROWTH = 8  # n against 8n: linear gives about 8, quadratic 64
# linear code measured 6 to 23 here: caches (a million distinct tags outgrow them between n
# and 8n) and a loaded shared machine; quadratic code would be 64 and more
MAX_RATIO = 32


def _ratio(tmp_path: Path, name: str, make, n: int, repeats: int = 5) -> float:
    """Best time of 8n over best time of n, the two runs interleaved (a loaded machine
    slows both alike)."""
    small, big = tmp_path / f"small{name}", tmp_path / f"big{name}"
    small.write_text(make(n), encoding="utf-8")
    big.write_text(make(GROWTH * n), encoding="utf-8")
    times = [
        (seconds(lambda: read_all([small])), seconds(lambda: read_all([big])))
        for _ in range(repeats)
    ]
    return min(b for _, b in times) / min(s for s, _ in times)


@pytest.mark.parametrize("case", list(ADVERSARIAL))
def test_seed_parsing_is_linear_on_adversarial_files(
    tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 times the input takes about 8 times as long, not 64 (see MAX_RATIO)."""
    monkeypatch.setattr(corpus, "MAX_HEADER_CHARS", 10**9)
    assert _ratio(tmp_path, ".txt", ADVERSARIAL[case], 1_000_000) < MAX_RATIO


@pytest.mark.parametrize("case", list(ADVERSARIAL_JSONL))
def test_jsonl_reading_is_linear_on_adversarial_files(tmp_path: Path, case: str) -> None:
    assert _ratio(tmp_path, ".jsonl", ADVERSARIAL_JSONL[case], 1_000_000) < MAX_RATIO


def peak_memory(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_jsonl_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    record = json.dumps({"text": "联合国的报告" * 50, "tags": ["A"]}, ensure_ascii=False)
    sizes = {}
    for n in (2_000, 8_000):
        path = tmp_path / f"{n}.jsonl"
        path.write_text((record + "\n") * n, encoding="utf-8")
        sizes[n] = path.stat().st_size
        drained = peak_memory(lambda path=path: deque(read_corpus([path]), maxlen=0))
        assert drained < 4 * corpus.CHUNK_BYTES, drained  # a chunk and a line, never the file
    assert sizes[8_000] > 6 * corpus.CHUNK_BYTES


@pytest.mark.parametrize(
    "text",
    [
        "联合国的报告" * 2,  # CJK: 3 bytes of UTF-8, 2 of text a character
        "United Nations ",  # ASCII: 1 and 1
        "联合国 😀" * 2,  # a character outside the BMP: every character takes 4 bytes
    ],
)
def test_seed_memory_is_twice_the_text(tmp_path: Path, text: str) -> None:
    """Reading a seed file holds the decoded pieces and then the text they make: the extra
    peak memory of 4 times the file is 4 times that of the file, about 2 x its text."""
    peaks, sizes = {}, {}
    for mb in (2, 8):
        path = tmp_path / f"{mb}.txt"
        body = text * (mb * 1024 * 1024 // len(text.encode()))
        path.write_text("%%%A|\n\n" + body, encoding="utf-8")
        sizes[mb] = path.stat().st_size
        peaks[mb] = peak_memory(lambda path=path: deque(read_corpus([path]), maxlen=0))
    text_bytes_per_byte = (sys.getsizeof(body) - sys.getsizeof("")) / len(body.encode())
    marginal = (peaks[8] - peaks[2]) / (sizes[8] - sizes[2])
    assert marginal <= 2 * text_bytes_per_byte + 0.1, (marginal, text_bytes_per_byte)
    assert peaks[8] / sizes[8] <= 2 * text_bytes_per_byte + 0.5


def test_an_empty_jsonl_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    docs, report = read_all([path])
    assert docs == [] and [s.reason for s in report.skipped] == ["empty file: zero bytes"]


@pytest.mark.parametrize(("fill", "ok"), [(" ", True), ("\u3000", True), ("x", False)])
def test_a_long_line_two_is_judged_without_being_held(tmp_path: Path, fill: str, ok: bool) -> None:
    path = tmp_path / "doc.txt"
    path.write_text("%%%A|\n" + fill * 10_000_000 + "\n文本", encoding="utf-8")
    peak = peak_memory(lambda: read_all([path]))
    docs, report = read_all([path])
    assert (docs == [Document("doc.txt", "文本", ("A",))]) is ok
    assert [s.reason.split(":")[0] for s in report.skipped] == ([] if ok else ["no blank line"])
    assert path.stat().st_size >= 10**7
    assert peak < 10 * corpus.CHUNK_BYTES  # a few chunks and pieces, not the line
