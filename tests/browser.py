"""Open an HTML report in headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Every request other than the page itself is recorded and aborted, so a test
can assert that a report is self-contained.  No browser is ever downloaded.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@dataclass
class Rendered:
    """What the browser saw: section titles, figures, task bars, requests beyond the page, console errors."""

    sections: list[str]
    svgs: int
    images: int
    broken_images: int
    task_titles: list[str]
    requests: list[str]
    errors: list[str]
    text: str


def open_report(page_path: Path, screenshot: Path) -> Rendered:
    """Render ``page_path`` from disk, save a full-page screenshot and report what was displayed."""
    url = page_path.resolve().as_uri()
    requests: list[str] = []
    errors: list[str] = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                        args=FLAGS, viewport={"width": 1240, "height": 900},
                                                        bypass_csp=True)  # a request the CSP would block still shows
        try:
            page = browser.new_page()

            def route(r):
                if r.request.url != url:
                    requests.append(r.request.url)
                    return r.abort()
                return r.continue_()

            page.route("**/*", route)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, wait_until="load")
            rendered = Rendered(
                sections=page.locator("section > h2").all_inner_texts(),
                svgs=page.locator("svg").count(),
                images=page.locator("img").count(),
                broken_images=page.evaluate("[...document.images].filter(i => !i.complete || !i.naturalWidth).length"),
                task_titles=page.evaluate(
                    "[...document.querySelectorAll('svg.timeline rect.task > title')].map(t => t.textContent)"),
                requests=requests, errors=errors, text=page.inner_text("body"))
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return rendered
