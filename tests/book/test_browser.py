"""The built book (_build/html) and its student edition (_build/student/_build/html, `make book-student`) in
headless chromium: every page in _toc.yml loads, chapter pages show their figures and tables with no cell cut
short, the console has no errors and no internal link is broken. Solutions are collapsed in the book and absent
from the student edition, and each notebook page's Colab button opens that notebook in the book's repository."""

import http.server
import tempfile
import threading
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path
from urllib.parse import urldefrag

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parents[2]
EDITIONS = {"book": REPO / "_build" / "html", "student": REPO / "_build" / "student" / "_build" / "html"}
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
    # Only the local server is reachable, so the result is the same with or without internet
    # (resources from CDNs, e.g. MathJax, fail the same way everywhere and are ignored below).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def _toc_files(entries):
    for entry in entries:
        if "file" in entry:
            yield entry["file"]
        for key in ("parts", "chapters", "sections"):
            yield from _toc_files(entry.get(key, []))


def toc_pages():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    return [toc["root"], *_toc_files([toc])]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module", params=list(EDITIONS))
def edition(request):
    return request.param


@pytest.fixture(scope="module")
def site(edition):
    html = EDITIONS[edition]
    if not (html / "index.html").exists():
        pytest.skip(f"{html} is not built: run `make book` and `make book-student` first")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(site):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path and SE_OFFLINE keep selenium-manager from downloading anything.
    with pytest.MonkeyPatch.context() as env, tempfile.TemporaryDirectory() as profile:
        env.setenv("SE_OFFLINE", "true")
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _is_ignored(message, site):
    # Failed external resources and a missing favicon say nothing about the book itself.
    source = message.split(" ", 1)[0]
    return "favicon" in source or (source.startswith("http") and not source.startswith(site))


def _repository():
    entry = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]
    return entry["url"].removeprefix("https://github.com/"), entry.get("branch", "main")


@pytest.mark.parametrize("page", toc_pages())
def test_page(page, site, browser, edition):
    browser.get(f"{site}{page}.html")
    assert browser.title.strip(), "empty <title>"
    assert browser.find_elements(By.CSS_SELECTOR, "main article"), "no main article"

    if (REPO / f"{page}.ipynb").exists():
        loaded = browser.execute_script(
            "return [...document.querySelectorAll('article .cell_output img')]"
            ".filter(img => img.complete && img.naturalWidth > 0).length"
        )
        assert loaded, "no figure from the notebook outputs loaded"
        assert browser.find_elements(By.CSS_SELECTOR, "article table"), "no table"
        # pandas shortens long cells to "..." (50 characters by default): a reader would lose the qualifiers.
        cut = browser.execute_script(
            "return [...document.querySelectorAll('article table td, article table th')]"
            ".map(c => c.textContent.trim()).filter(t => t.endsWith('...') || t.endsWith('…'))"
        )
        assert not cut, f"truncated table cells: {cut[:5]}"
        repository, branch = _repository()
        colab = browser.execute_script(
            "return [...document.querySelectorAll('a[href^=\"https://colab.research.google.com/\"]')].map(a => a.href)")
        notebooks = browser.execute_script(
            "return [...document.querySelectorAll('a[href$=\".ipynb\"]')].map(a => a.href)"
            ".filter(h => h.startsWith(location.origin))")
        if edition == "book":  # the Colab button opens this notebook; the download button gets it
            assert colab == [f"https://colab.research.google.com/github/{repository}/blob/{branch}/{page}.ipynb"], colab
            assert notebooks == [f"{site}_sources/{page}.ipynb"], notebooks
        else:  # either would hand a student the notebook with its solutions
            assert not colab and not notebooks, (colab, notebooks)

    solutions = browser.find_elements(By.CSS_SELECTOR, "div.solution")
    if edition == "student":
        assert not solutions, "a solution in the student edition"
    for solution in solutions:  # collapsed: the title shows, the content only after a click
        assert "dropdown" in solution.get_attribute("class").split()
        assert solution.find_element(By.CSS_SELECTOR, ".admonition-title").is_displayed()
        assert not solution.find_element(By.CSS_SELECTOR, "section").is_displayed()

    errors = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and not _is_ignored(entry["message"], site)
    ]
    assert not errors, errors

    hrefs = browser.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)")
    internal = sorted({urldefrag(href).url for href in hrefs if href.startswith(site)})
    broken = [url for url in internal if _status(url) != 200]
    assert not broken, f"broken internal links: {broken}"
