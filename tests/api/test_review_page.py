"""Issue 13, the review page, in a real headless Chromium (Playwright driving Debian's
``chromium``) against a real ``tagger serve``: paste and upload, tags, highlights, verdicts,
autocomplete, feedback stored, the keyboard alone, and screenshots at two widths.

One browser and one server for the module. Skipped only when no Chromium binary is found
(``.ci/run`` installs Debian's ``chromium``), and failing instead of skipping under CI.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from test_supervisor import Served, call, free_port, wait_for

EDITOR_TOKEN = "editor-test-token"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASTED = (
    "各国政府应加强学校教育，提高女童入学率，为教师提供培训，并在农村地区建设更多学校和数字学习"
    "设施，使每个儿童都能接受包容和公平的优质教育。报告指出，学生因缺乏互联网而无法参加远程学习，"
    "教育部门需要增加预算。\n\n"
    "过度捕捞使鱼类种群减少，威胁沿海社区的粮食安全。报告呼吁各国保护海洋环境，减少污染，支持小"
    "规模渔民，并确保粮食供应链在气候变化下保持稳定，使贫困家庭获得足够的营养食物。"
)


def chromium() -> str | None:
    """The Chromium binary to drive: Debian's package first."""
    found = [shutil.which("chromium"), shutil.which("chromium-browser")]
    for candidate in ("/usr/bin/chromium", *found):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (under CI the browser tests must run: .ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (each test gets a fresh context, so a fresh
    sessionStorage); Playwright's own browser download is never used."""
    binary = chromium()
    if binary is None:
        unavailable("no Chromium binary found: apt-get install chromium (Debian's package)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as p:
        # launch() gives every browser a new, empty user-data-dir of its own
        b = p.chromium.launch(executable_path=binary, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, trained_models_dir: Path) -> Iterator[dict]:
    """`tagger serve` (one worker) with an editor token and a feedback store of its own."""
    root = tmp_path_factory.mktemp("review")
    shutil.copytree(trained_models_dir, root / "models")
    db = root / "feedback.sqlite3"
    served = Served(
        root / "models",
        free_port(),
        workers=1,
        TAGGER_EDITOR_TOKEN=EDITOR_TOKEN,
        TAGGER_FEEDBACK_DB=str(db),
    )
    try:
        assert wait_for(served.ready, 90), served.stderr()
        port = served.port
        yield {"url": f"http://127.0.0.1:{port}", "port": port, "db": db, "served": served}
    finally:
        served.stop()


@pytest.fixture
def open_page(browser, server):
    """A function opening the page in a new context; every request it makes is checked to
    stay on the service's origin when the test ends."""
    contexts, requests = [], []

    def opener(viewport: dict = DESKTOP):
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        page.goto(server["url"] + "/")
        page.wait_for_selector("body[data-ready]", state="attached")  # model and labels read
        return page

    yield opener
    for context in contexts:
        context.close()
    outside = [u for u in requests if not u.startswith(server["url"] + "/") and u != "about:blank"]
    assert not outside, f"the page reached outside its origin: {outside}"


def api_tags(server: dict, text: str) -> dict:
    status, body = call(server["port"], "POST", "/v1/predict", {"text": text, "paragraphs": True})
    assert status == 200, body
    return body


def paste_and_tag(page, text: str = PASTED, n_docs: int = 1) -> Any:
    page.fill("#text", text)
    page.click("#go")
    page.wait_for_function(f"() => document.querySelectorAll('article.doc').length >= {n_docs}")
    return page.locator("article.doc").last


def shown_tags(doc) -> list[str]:
    return doc.locator("li.sugg").evaluate_all("els => els.map(e => e.dataset.tag)")


def stored(db: Path) -> list[dict]:
    """The feedback records, read from the SQLite store itself."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:  # read only, closed
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT doc_id, text, accepted, rejected, added, model FROM feedback ORDER BY seq"
        ).fetchall()
    return [
        {**dict(r), **{k: json.loads(r[k]) for k in ("accepted", "rejected", "added")}}
        for r in rows
    ]


def sent(page, doc, server: dict) -> str:
    """The message of a document's send once it has an answer (the server's log on failure)."""
    result = doc.locator(".send .result")
    try:
        page.wait_for_function(
            "el => el.textContent && el.textContent !== 'Sending…'",
            arg=result.element_handle(),
            timeout=60_000,
        )
    except Exception as exc:
        tail = server["served"].stderr()[-3000:]
        raise AssertionError(f"no answer to the send: {result.inner_text()!r}\n{tail}") from exc
    return result.inner_text()


def marked(text: str, spans: list[tuple[int, int]]) -> str:
    """The text the page marks for sorted spans: overlapping ones (a word and its
    characters' n-grams) merge into one mark."""
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return "".join(text[a:b] for a, b in merged)


def check_highlights(server: dict, doc, text: str) -> None:
    """After a tag was chosen: the highlights are its evidence spans as the service gives
    them, ``text[start:end]`` in order, and the line above the text names its top term."""
    tag = doc.locator(".tag[aria-pressed=true]")
    assert tag.count() == 1
    name = tag.inner_text()
    status, body = call(
        server["port"], "POST", "/v1/predict", {"text": text, "paragraphs": True, "explain": True}
    )
    assert status == 200, body
    evidence = next(t for t in body["results"][0]["tags"] if t["tag"] == name)["evidence"]
    spans = sorted({tuple(s) for e in evidence for s in e["spans"]})
    assert spans, f"{name} has evidence to highlight"
    marks = doc.locator(".cols .text mark").all_inner_texts()
    assert "".join(marks) == marked(text, spans)
    why = doc.locator(".why").inner_text()
    assert why.startswith(name) and evidence[0]["term"] in why


def test_paste_review_and_send_feedback(open_page, server) -> None:
    """Paste Chinese text, see the service's tags, highlight one, accept one, reject one, add
    one through autocomplete, send, and find the record in the store."""
    page = open_page()
    doc = paste_and_tag(page)
    answer = api_tags(server, PASTED)
    expected = answer["results"][0]
    assert shown_tags(doc) == [t["tag"] for t in expected["tags"]]
    assert len(expected["tags"]) >= 2
    assert doc.locator("details.para").count() == len(expected["paragraphs"])

    first, second = expected["tags"][0]["tag"], expected["tags"][1]["tag"]
    doc.locator(f"li.sugg[data-tag='{first}'] .tag").click()
    check_highlights(server, doc, PASTED)
    doc.locator(f"li.sugg[data-tag='{first}'] .tag").click()  # again: off
    assert doc.locator(".tag[aria-pressed=true]").count() == 0
    assert doc.locator(".cols .text mark").count() == 0

    # a paragraph's tag: its own evidence, marked in that paragraph (found in the text even
    # where the service joined two short paragraphs with a space)
    para = doc.locator("details.para").first
    para.locator("summary").click()
    para.locator(".tag").first.click()
    _, explained = call(
        server["port"], "POST", "/v1/predict", {"text": PASTED, "paragraphs": True, "explain": True}
    )
    evidence = explained["results"][0]["paragraphs"][0]["tags"][0]["evidence"]
    spans = sorted({tuple(s) for e in evidence for s in e["spans"]})
    assert "".join(para.locator(".text mark").all_inner_texts()) == marked(PASTED, spans)
    para.locator(".tag").first.click()

    doc.get_by_role("button", name=f"Accept {first}").click()
    doc.get_by_role("button", name=f"Reject {second}").click()
    assert doc.get_by_role("button", name=f"Accept {first}").get_attribute("aria-pressed") == "true"
    assert "rejected" in doc.locator(f"li.sugg[data-tag='{second}']").get_attribute("class")

    labels = call(server["port"], "GET", "/v1/labels")[1]["labels"]
    extra = next(t for t in labels if t not in (first, second))
    box = doc.get_by_role("combobox")
    box.fill(extra[:4].lower())
    option = doc.get_by_role("option", name=extra)
    assert option.is_visible() and box.get_attribute("aria-expanded") == "true"
    box.press("ArrowDown")
    assert box.get_attribute("aria-activedescendant")
    box.press("Enter")
    assert doc.locator("ul.added li").first.inner_text().startswith(extra)
    assert "1 accepted · 1 rejected · 1 added" in doc.locator(".send-btn").inner_text()

    doc.locator(".send-btn").click()
    page.locator("#token-dialog").wait_for(state="visible")  # asked once, kept for the tab
    page.fill("#token", EDITOR_TOKEN)
    page.click("#token-dialog button[value=save]")
    message = sent(page, doc, server)
    assert page.evaluate("sessionStorage.getItem('tagger.editorToken')") == EDITOR_TOKEN
    assert message.startswith("Sent"), message
    records = stored(server["db"])
    assert records[-1]["text"] == PASTED and records[-1]["doc_id"] is None
    assert (records[-1]["accepted"], records[-1]["rejected"], records[-1]["added"]) == (
        [first], [second], [extra],
    )  # fmt: skip
    assert records[-1]["model"] == answer["model"]
    assert page.errors == []


def test_highlights_follow_the_evidence_spans(open_page, server) -> None:
    """The page marks exactly ``text[start:end]`` of each span, counted in characters as the
    service counts them (an astral character before a span shifts UTF-16 offsets by one),
    in the document and in the paragraph it falls in: the contract of the explain branch,
    answered here by rewriting the service's answer in the browser."""
    page = open_page()
    text = "𠀀数字学习。" + PASTED  # U+20000 is two UTF-16 units, one character
    term = "学校教育"
    start = text.index(term)  # a code point index: the text has one astral character first
    spans = [[start, start + len(term)], [text.index("教师"), text.index("教师") + 2]]

    def with_evidence(route) -> None:
        response = route.fetch()
        body = response.json()
        for result in body.get("results", []):  # none in a refusal of "explain" (422)
            for t in result["tags"]:
                t["evidence"] = [
                    {"term": "学校教育", "contribution": 0.4, "spans": spans[:1]},
                    {"term": "教师", "contribution": 0.1, "spans": spans[1:]},
                    {"term": "并", "contribution": -0.2, "spans": [[0, 1]]},
                ]
            for p in result["paragraphs"] or []:
                for t in p["tags"]:
                    t["evidence"] = [{"term": "教师", "contribution": 0.2, "spans": spans[1:]}]
        route.fulfill(response=response, json=body)

    page.route("**/v1/predict", with_evidence)
    doc = paste_and_tag(page, text)
    doc.locator("li.sugg .tag").first.click()
    assert doc.locator(".cols .text mark").all_inner_texts() == ["学校教育", "教师"]
    assert doc.locator(".cols .text mark.strong").count() == 2  # the 3 strongest terms
    assert "学校教育 +0.40" in doc.locator(".why").inner_text()
    doc.locator("details.para summary").first.click()
    para = doc.locator("details.para").first
    assert para.locator(".text mark").all_inner_texts() == ["学校教育", "教师"]
    para.locator(".tag").first.click()
    assert para.locator(".text mark").all_inner_texts() == ["教师"]
    assert doc.locator(".cols .text mark").all_inner_texts() == ["教师"]
    assert page.errors == []


def test_upload_two_files(open_page, server, tmp_path: Path) -> None:
    """A seed-format file and a JSONL file of two records give three documents, each tagged,
    with the seed file's own tags shown and the JSONL ids kept for the feedback."""
    seed = tmp_path / "school.txt"
    seed.write_text("%%%EDUCATION|WOMEN'S RIGHTS|\n\n" + PASTED.split("\n\n")[0], encoding="utf-8")
    jsonl = tmp_path / "batch.jsonl"
    records = [{"id": "fish-1", "text": PASTED.split("\n\n")[1]}, {"id": "both-2", "text": PASTED}]
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n{bad\n")
    page = open_page()
    page.set_input_files("#files", [str(seed), str(jsonl)])
    page.wait_for_function("() => document.querySelectorAll('article.doc').length === 3")
    names = page.locator("article.doc h2").all_inner_texts()
    assert names == ["school.txt", "batch.jsonl · fish-1", "batch.jsonl · both-2"]
    assert "batch.jsonl: line 3 not read" in page.locator("#status").inner_text()
    assert page.locator("nav#doclist li").count() == 3
    docs = page.locator("article.doc")
    assert "Tags in the file: EDUCATION · WOMEN'S RIGHTS" in docs.nth(0).inner_text()
    for i, text in enumerate([PASTED.split("\n\n")[0], records[0]["text"], records[1]["text"]]):
        want = [t["tag"] for t in api_tags(server, text)["results"][0]["tags"]]
        assert shown_tags(docs.nth(i)) == want
    assert page.evaluate("state.docs.map(d => d.id)") == ["school", "fish-1", "both-2"]

    # a verdict on two of them, sent together: one record each, under the file's id
    assert docs.nth(0).locator(".send-btn").is_disabled()  # nothing decided: nothing to send
    docs.nth(0).locator("li.sugg .accept").first.click()
    docs.nth(1).locator("li.sugg .reject").first.click()
    before = len(stored(server["db"]))
    page.click("#send-all")
    page.fill("#token", EDITOR_TOKEN)
    page.click("#token-dialog button[value=save]")
    page.wait_for_function(
        "() => document.querySelector('#all-result').textContent.includes('sent')"
    )
    assert page.locator("#all-result").inner_text() == "2 of 2 sent."
    records = stored(server["db"])[before:]
    assert [(r["doc_id"], r["accepted"], r["rejected"]) for r in records] == [
        ("school", [shown_tags(docs.nth(0))[0]], []),
        ("fish-1", [], [shown_tags(docs.nth(1))[0]]),
    ]
    assert page.locator("nav#doclist li").all_inner_texts()[:2] == [
        "school.txt · sent",
        "batch.jsonl · fish-1 · sent",
    ]
    assert page.errors == []


def test_upload_reads_utf16_and_names_what_it_cannot(open_page, tmp_path: Path) -> None:
    """Encodings as the corpus reader takes them: UTF-16 with its mark is read, a GBK file
    is refused by name instead of being shown as mojibake."""
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes(("%%%EDUCATION|\r\n\r\n" + PASTED).encode("utf-16"))  # with a BOM
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes(PASTED.encode("gbk"))
    page = open_page()
    page.set_input_files("#files", [str(utf16), str(gbk)])
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('gbk')")
    assert page.locator("article.doc h2").all_inner_texts() == ["utf16.txt"]
    assert page.evaluate("state.docs[0].text") == PASTED
    assert "gbk.txt: not UTF-8 text" in page.locator("#status").inner_text()
    assert page.errors == []


def test_keyboard_only(open_page, server) -> None:
    """Tab, Enter, Space, arrows and Escape alone: paste, tag, highlight, accept, reject, add,
    and send; the focused control always shows a focus ring."""
    page = open_page()

    def tab_to(selector: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement.matches({selector!r})"):
                ring = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
                assert ring not in ("", "none"), f"no visible focus on {selector}"
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#text")
    page.keyboard.insert_text(PASTED)
    tab_to("#go")
    page.keyboard.press("Enter")
    page.wait_for_selector("article.doc")
    doc = page.locator("article.doc")
    tab_to("li.sugg .tag")
    page.keyboard.press("Space")
    assert doc.locator("li.sugg .tag").first.get_attribute("aria-pressed") == "true"
    check_highlights(server, doc, PASTED)
    tab_to("li.sugg .accept")
    page.keyboard.press("Enter")
    tab_to("li.sugg:nth-child(2) .reject")
    page.keyboard.press("Space")
    assert page.locator("li.sugg .accept").first.get_attribute("aria-pressed") == "true"
    assert page.locator("li.sugg:nth-child(2) .reject").get_attribute("aria-pressed") == "true"

    tab_to("[role=combobox]")
    page.keyboard.type("h")
    assert page.get_by_role("listbox").is_visible()
    page.keyboard.press("Escape")
    assert not page.get_by_role("listbox").is_visible()
    page.keyboard.press("ArrowDown")  # opens it again and picks the first option
    picked = page.locator("[role=option][aria-selected=true]").inner_text()
    page.keyboard.press("Enter")
    assert doc.locator("ul.added li").first.inner_text().startswith(picked)

    tab_to(".send-btn")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.insert_text("not saved")
    page.keyboard.press("Escape")  # closes the dialog, saves nothing, focus back on Send
    page.wait_for_function(
        "() => !document.querySelector('#token-dialog').open"
        " && document.activeElement.classList.contains('send-btn')"
    )
    assert page.evaluate("sessionStorage.getItem('tagger.editorToken')") is None
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(EDITOR_TOKEN)
    page.keyboard.press("Enter")  # submits the dialog with its first button, Save
    message = sent(page, doc, server)
    assert message.startswith("Sent"), message
    assert stored(server["db"])[-1]["added"] == [picked]
    assert page.errors == []


def test_low_confidence_is_marked(open_page, server) -> None:
    """English text on a Chinese model still gets one tag, below the tuned threshold: it is
    marked low confidence, and a tag above the threshold is not."""
    page = open_page()
    doc = paste_and_tag(page, "The committee discussed the weather in London today.")
    threshold = call(server["port"], "GET", "/v1/model")[1]["metadata"]["decision"]["thresholds"]
    row = doc.locator("li.sugg").first
    score = float(row.locator(".score").inner_text().split()[-1])
    assert score < threshold["document"]
    assert row.locator(".badge.low").inner_text() == "low confidence"
    assert "lowconf" in row.get_attribute("class")
    doc = paste_and_tag(page, PASTED, n_docs=2)
    assert doc.locator("li.sugg").first.locator(".badge.low").count() == 0


def test_the_model_card_is_on_the_page(open_page, server) -> None:
    """The serving version's card (GET /v1/model/card), opened from the footer."""
    page = open_page()
    version = call(server["port"], "GET", "/v1/model")[1]["version"]
    page.locator("#card-box summary").click()
    card = page.locator("#card")
    assert card.is_visible()
    assert version in card.inner_text() and "## Data" in card.inner_text()
    assert page.errors == []


@pytest.mark.parametrize("name, viewport", [("desktop", DESKTOP), ("phone", PHONE)])
def test_screenshot(open_page, tmp_path_factory, name: str, viewport: dict) -> None:
    """The reviewed page at desktop and phone width: saved as PNG, its regions visible and
    inside the viewport's width, and nothing wider than the screen."""
    page = open_page(viewport)
    doc = paste_and_tag(page)
    doc.locator("li.sugg .tag").first.click()
    doc.locator("li.sugg .accept").first.click()
    doc.locator("details.para summary").first.click()
    for selector in ("#drop", "article.doc", "li.sugg", ".cols .text", "details.para", ".send-btn"):
        box = page.locator(selector).first.bounding_box()
        assert box and box["width"] > 0 and box["height"] > 0, selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 0.5, selector
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    folder = tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(exist_ok=True)
    path = folder / f"review-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 30_000, len(png)
    print(f"screenshot: {path}")


# What main answered before the explain and feedback branches (recorded from it)
NO_EXPLAIN = {
    "detail": [
        {
            "loc": ["body", "explain"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
    ],
    "error_count": 1,
}


def test_degrades_without_explanations_or_feedback(open_page, server) -> None:
    """A service that refuses "explain" (422) still tags, with nothing to highlight and a
    plain statement; a wrong token is asked for again; a service with no feedback route (404)
    is named as such, and the review stays on the page."""
    page = open_page()
    asked: list[dict] = []

    def old_predict(route) -> None:
        body = json.loads(route.request.post_data or "{}")
        asked.append(body)
        if "explain" in body:
            route.fulfill(status=422, json=NO_EXPLAIN)
        else:
            route.continue_()

    page.route("**/v1/predict", old_predict)
    doc = paste_and_tag(page)
    assert [("explain" in b) for b in asked] == [True, False]  # asked again without it
    assert shown_tags(doc) == [t["tag"] for t in api_tags(server, PASTED)["results"][0]["tags"]]
    assert "gives no explanations" in page.locator("#status").inner_text()
    doc.locator("li.sugg .tag").first.click()
    assert doc.locator("mark").count() == 0
    assert "no explanation" in doc.locator(".why").inner_text()

    doc.locator("li.sugg .accept").first.click()
    page.evaluate("sessionStorage.setItem('tagger.editorToken', 'wrong')")
    doc.locator(".send-btn").click()
    page.locator("#token-dialog").wait_for(state="visible")  # refused (401): asked again
    assert "refused" in page.locator("#token-reason").inner_text()
    assert page.evaluate("sessionStorage.getItem('tagger.editorToken')") is None
    page.route(
        "**/v1/feedback", lambda route: route.fulfill(status=404, json={"detail": "Not Found"})
    )
    page.fill("#token", EDITOR_TOKEN)
    page.click("#token-dialog button[value=save]")
    result = doc.locator(".send .result")
    page.wait_for_function("el => el.textContent.includes('404')", arg=result.element_handle())
    assert "no feedback endpoint" in result.inner_text()
    assert doc.locator(".accept[aria-pressed=true]").count() == 1  # the review is kept
    assert page.errors == []


def test_a_tag_raised_by_its_name_says_so(browser, tmp_path: Path) -> None:
    """A model that reads the labels' names: choosing a tag its name raised names the
    terms the text shares with it, beside the words that raised its linear score."""
    from tests.classifier.test_names import RARE, SAYS_ITS_NAME, save_named_model

    save_named_model(tmp_path / "models")
    served = Served(tmp_path / "models", free_port(), workers=1)
    context = browser.new_context(viewport=DESKTOP)
    try:
        assert wait_for(served.ready, 90), served.stderr()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{served.port}/")
        page.wait_for_selector("body[data-ready]", state="attached")
        doc = paste_and_tag(page, SAYS_ITS_NAME)
        doc.locator(f"li.sugg[data-tag='{RARE[3]}'] .tag").click()
        why = doc.locator(".why").inner_text()
        assert why.startswith(RARE[3]) and f"its name: {RARE[3]} +" in why, why
    finally:
        context.close()
        served.stop()
