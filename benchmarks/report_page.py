"""Measure a rendered findings page as a reader's screen shows it: its height in screens with every
fold closed, its size, and what the first screen holds (headless Chromium at the reader's viewport).

    python benchmarks/report_page.py results/report/findings.html

The bounds are optimizer_dynamics.report's (the browser tests check them on the tiny study; this
measures the default study's page, or any other).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from optimizer_dynamics.report import MAX_HTML_BYTES, MAX_SCREENS, READER_VIEWPORT


def open_page(html: Path) -> webdriver.Chrome:
    """Headless Chromium with its viewport (not its window) at READER_VIEWPORT, the page loaded."""
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    width, height = READER_VIEWPORT
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    driver.get(html.resolve().as_uri())
    driver.execute_script("return document.fonts.ready")
    driver.execute_async_script("const done = arguments[0]; Promise.all(Array.from(document.images)"
                                ".map(i => i.decode().catch(() => null))).then(() => done())")
    return driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    html = parser.parse_args().html
    driver = open_page(html)
    try:
        page = driver.execute_script("return document.documentElement.scrollHeight")
        screen = READER_VIEWPORT[1]
        first = driver.execute_script(
            "return Array.from(document.querySelectorAll('h1, h2, section#key-findings li'))"
            ".filter(e => e.getBoundingClientRect().top < window.innerHeight)"
            ".map(e => e.tagName + ': ' + e.innerText.slice(0, 70))")
        sections = driver.execute_script(
            "return Array.from(document.querySelectorAll('section.level2')).map(s => [s.id, s.offsetHeight])")
    finally:
        driver.quit()
    size = html.stat().st_size
    print(f"page: {page} px = {page / screen:.1f} screens of {screen} px (bound {MAX_SCREENS}), folds closed")
    print(f"html: {size / 1e6:.2f} MB (bound {MAX_HTML_BYTES / 1e6:g} MB)")
    print("first screen:", *first, sep="\n  ")
    print("sections (px):", *(f"{height:6d}  {name}" for name, height in sections), sep="\n  ")


if __name__ == "__main__":
    main()
