"""The rendered site in a real browser (Debian's headless Chromium): every page loads from disk
without console errors, its tables render, sorting works, and a name with HTML in it is text."""

import os

import pytest
import yaml

from policypress.report.site import page_name, render
from tests.browser import CHROMIUM, Browser
from tests.test_leaderboard import table


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Chromium first: scripts/install-tools")
        pytest.skip("Chromium is not installed (scripts/install-tools installs it)")
    out = tmp_path_factory.mktemp("site")
    table().to_csv(out / "table.csv", index=False)
    claims = {"claims": [{"paper": "A <i>paper</i>", "method": "good", "claim": "good keeps 80% at level 0.1",
                          "evidence": "[A]", "paper_setting": "Atari", "envs": {"cartpole": "an MLP, not a CNN"},
                          "test": {"score_at_least": 0.8, "level": 0.1}}]}
    (out / "claims.yaml").write_text(yaml.safe_dump(claims))
    render(out / "table.csv", out / "site", ["methods"], {"commit": "abc123", "profile": "quick"}, baselines=["good"],
           claims_file=out / "claims.yaml")
    return out / "site"


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed")
    chromium = Browser()
    yield chromium
    chromium.close()


def test_every_page_loads_without_errors_and_renders_its_tables(site, browser, tmp_path):
    pages = sorted(site.glob("*.html"))
    assert len(pages) == 6  # overview, claims, one env, three methods
    for path in pages:
        page = browser.open(path)
        assert page.evaluate("document.querySelectorAll('table tbody tr').length") > 0, path.name
        assert page.evaluate("document.querySelectorAll('td b, td script, nav b').length") == 0, path.name
        assert page.errors() == [], path.name
    shot = browser.open(site / "env-cartpole.html").screenshot(tmp_path / "env-cartpole.png")
    assert shot.stat().st_size > 10_000


def test_a_method_name_with_html_is_shown_as_text(site, browser):
    page = browser.open(site / "env-cartpole.html")
    cells = page.evaluate("Array.from(document.querySelectorAll('tbody td:first-child')).map(td => td.textContent)")
    assert "<b>bad</b>" in cells
    nav = browser.open(site / page_name("method", "<b>bad</b>"))
    assert nav.evaluate("document.querySelector('h1').textContent") == "<b>bad</b>"


def test_clicking_a_header_sorts_the_table_both_ways(site, browser):
    page = browser.open(site / "env-cartpole.html")  # its table per method × level, below the compression table
    column = page.evaluate(
        "Array.from(document.querySelectorAll('#levels thead th')).findIndex(th => th.textContent.trim() === 'method')")
    read = f"Array.from(document.querySelectorAll('#levels tbody tr')).map(tr => tr.cells[{column}].textContent)"
    header = f"document.querySelectorAll('#levels thead th')[{column}]"
    page.evaluate(f"{header}.click()")
    ascending = page.evaluate(read)
    assert ascending == sorted(ascending, key=str.lower) and page.evaluate(
        f"{header}.getAttribute('aria-sort')") == "ascending"
    page.evaluate(f"{header}.click()")
    assert page.evaluate(read) == ascending[::-1]
    assert page.errors() == []


def test_the_claims_page_sets_each_claim_beside_its_measurement_and_verdict(site, browser):
    index = browser.open(site / "index.html")
    assert index.evaluate("document.querySelector('nav a[href=\"claims.html\"]') !== null")
    page = browser.open(site / "claims.html")
    cells = page.evaluate("Array.from(document.querySelectorAll('#claims tbody td')).map(td => td.textContent)")
    assert cells[0].startswith("A <i>paper</i>")  # escaped, shown as text
    assert "cartpole, good" in cells[3] and "retention at level 0.1 0.925 [0.800, 1.000]" in cells[3]
    assert cells[4] == "reproduced" and "Differences: an MLP, not a CNN" in cells[5]
    assert page.errors() == []


def test_at_a_laptops_width_every_table_fits_and_the_env_tables_column_groups_toggle(site, browser):
    for path in sorted(site.glob("*.html")):
        page = browser.open(path)
        page.set_viewport(1366)
        assert page.evaluate("Array.from(document.querySelectorAll('table')).every("
                             "t => t.scrollWidth <= t.parentElement.clientWidth)"), path.name
    page = browser.open(site / "env-cartpole.html")
    page.set_viewport(1366)
    shown = "Array.from(document.querySelectorAll('#levels thead th')).filter(th => th.offsetWidth > 0).length"
    before = page.evaluate(shown)
    page.evaluate("document.querySelector('input[data-group=\"host-speed\"]').click()")
    assert page.evaluate(shown) == before + 6  # latency, p99, speedup, C µs, C speedup, instructions
    page.evaluate("document.querySelector('input[data-group=\"host-speed\"]').click()")
    assert page.evaluate(shown) == before and page.errors() == []
