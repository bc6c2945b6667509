"""The inspector's web page in a real browser: Debian's Chromium, headless, reading the DOM it
built from ``/api/calls`` (``--dump-dom``; ``--virtual-time-budget`` lets the page's fetch finish
first). Installed by ``.ci/install`` (``apt-get install chromium``); nothing is downloaded here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import psycopg
import pytest

from emulator.inspector import page
from tests.support.emulators import Emulator, start_emulator, stop_emulator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="Debian's chromium is not installed (.ci/install)")
SECRET = "sk-page-secret-NEVER-SHOWN"


class Dom(HTMLParser):
    """The rows of the calls table and the text of the elements with an id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.classes: list[list[str]] = []
        self.texts: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []  # (tag, id) of the open elements
        self._in_tbody = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tbody" and values.get("id") == "calls":
            self._in_tbody = True
        if self._in_tbody and tag == "tr":
            self.rows.append([])
            self.classes.append([])
        if self._in_tbody and tag == "td":
            self.rows[-1].append("")
            self.classes[-1].append(values.get("class") or "")
        self._open.append((tag, values.get("id")))
        if values.get("id"):
            self.texts.setdefault(str(values["id"]), "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_tbody = False
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _tag, ident in self._open:
            if ident:
                self.texts[ident] += data
        if self._in_tbody and self.rows and self.rows[-1] and self._open[-1][0] == "td":
            self.rows[-1][-1] += data


def browse(url: str) -> Dom:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
             "--dump-dom", url],
            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return Dom(result.stdout)


@pytest.fixture(scope="module")
def inspected() -> Iterator[tuple[Emulator, str, list[dict[str, Any]]]]:
    emulator = start_emulator("--inspector-port", "0")
    try:
        url = next(m.group(1) for line in emulator.output
                   if (m := re.match(r"inspector: (http://\S+/)", line)))
        with psycopg.connect(emulator.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
            conn.execute("SELECT google_ml.embedding('text-embedding-005', 'hello page')")
            conn.execute("SELECT google_ml.embedding('text-embedding-005', 'hello page')")
            conn.execute("SET google_ml_integration.allow_http_endpoints = on")
            conn.execute(
                "CALL google_ml.create_model(model_id => 'page-broken', model_provider => 'custom', "
                "model_request_url => 'http://127.0.0.1:9/nothing?key=" + SECRET + "', "
                "model_type => 'generic')")
            with pytest.raises(psycopg.Error):
                conn.execute("SELECT google_ml.predict_row('page-broken', '{\"q\": 1}')")
        calls = json.load(urllib.request.urlopen(url + "api/calls"))
        yield emulator, url, calls
    finally:
        stop_emulator(emulator)


@needs_chromium
def test_the_page_lists_calls_and_opens_one_side_by_side(
    inspected: tuple[Emulator, str, list[dict[str, Any]]],
) -> None:
    _emulator, url, calls = inspected
    broken = next(c for c in calls if c["model_id"] == "page-broken")
    dom = browse(f"{url}#call={broken['id']}")
    assert [row[1] for row in dom.rows] == [c["model_id"] for c in calls]  # newest first
    broken_row = dom.rows[[c["id"] for c in calls].index(broken["id"])]
    assert broken_row[3] == "08001" and "err" in dom.classes[0][3]
    assert dom.texts["count"] == f"{len(calls)} of {len(calls)} calls"
    assert "http://127.0.0.1:9/nothing?key=[REDACTED]" in dom.texts["request"]
    assert '"q": 1' in dom.texts["request"]
    assert "page-broken" in dom.texts["detail"] and "could not connect" in dom.texts["detail"]
    assert SECRET not in dom.texts["detail"]
    assert "Response" in dom.texts["response"]


@needs_chromium
def test_the_page_filters_by_model_and_status(
    inspected: tuple[Emulator, str, list[dict[str, Any]]],
) -> None:
    _emulator, url, calls = inspected
    errors = browse(f"{url}#status=error")
    assert [row[1] for row in errors.rows] == ["page-broken"]
    embeddings = browse(f"{url}#model=text-embedding-005&status=ok")
    assert [row[1] for row in embeddings.rows] == ["text-embedding-005"] * 2
    assert [row[5] for row in embeddings.rows] == ["cache", "fake"]  # the second call hit the cache
    hit = next(c for c in calls if c["model_id"] == "text-embedding-005")
    opened = browse(f"{url}#model=text-embedding-005&call={hit['id']}")
    assert '"content": "hello page"' in opened.texts["request"]
    assert '"values": [0, ' in opened.texts["response"]  # a vector on one line


def test_the_api_refuses_foreign_hosts_and_clears(
    inspected: tuple[Emulator, str, list[dict[str, Any]]],
) -> None:
    _emulator, url, calls = inspected
    assert calls and all(SECRET not in json.dumps(c) for c in calls)
    foreign = urllib.request.Request(url + "api/calls", headers={"Host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(foreign)
    assert refused.value.code == 403
    errors = json.load(urllib.request.urlopen(url + "api/calls?status=error&limit=5"))
    assert [c["model_id"] for c in errors] == ["page-broken"]


def test_the_page_has_no_external_assets() -> None:
    html = page().decode()
    assert not re.search(r"""(src|href)\s*=|@import|url\(|https?://""", html)
