"""Aggregation and rendering: IQM with CIs, invalid/n/a rows kept, a self-contained page."""

import re

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly
from rliable import metrics as rly_metrics

from policypress.core.io import write_json
from policypress.core.specs import load_env_spec
from policypress.report.aggregate import summarise
from policypress.report.site import markdown, page_name, render
from policypress.report.stats import iqm_with_ci

VALID = {"status": "valid", "reason": None, "mean_return": 100.0, "params_total": 1000, "params_nonzero": 100,
         "params_fraction": 0.1, "bytes": 400, "macs_dense": 900, "macs_nonzero": 90, "latency_us_median": 5.0,
         "latency_us_p99": 7.0, "teacher_latency_us_median": 6.0, "latency_speedup": 1.2, "instructions": 5000,
         "flash_bytes": 3072, "ram_bytes": 512}


def table() -> pd.DataFrame:
    rows = []
    for seed, retention in enumerate([0.9, 1.0, 0.8, 0.95]):
        rows.append({"env": "cartpole", "seed": seed, "method": "good", "level": 0.1, **VALID,
                     "retention": retention, "normalized_score": retention})
        rows.append({"env": "cartpole", "seed": seed, "method": "<b>bad</b>", "level": 0.1, "status": "invalid",
                     "reason": "budget exceeded: env_steps would reach 11 > limit 10"})
        rows.append({"env": "cartpole", "seed": seed, "method": "cnn_only", "level": 0.1, "status": "n/a",
                     "reason": "cnn_only does not support Linear layers"})
    return pd.DataFrame(rows)


def test_iqm_and_ci_agree_with_rliable_computed_directly():
    scores = np.array([0.9, 1.0, 0.8, 0.95, 0.5, 0.99, 1.02, 0.97])
    point, low, high = iqm_with_ci(scores)
    assert point == pytest.approx(rly_metrics.aggregate_iqm(scores.reshape(-1, 1)))
    np.random.seed(0)
    _, interval = rly.get_interval_estimates({"x": scores.reshape(-1, 1)},
                                             lambda x: np.array([rly_metrics.aggregate_iqm(x)]), reps=2000)
    assert (low, high) == pytest.approx((interval["x"][0, 0], interval["x"][1, 0]))
    assert low <= point <= high


def test_invalid_and_na_runs_are_kept_but_never_scored():
    summary = summarise(table()).set_index("method")
    assert summary.loc["good", "status"] == "valid" and summary.loc["good", "seeds"] == 4
    assert summary.loc["good", "retention"] == pytest.approx(np.mean([0.9, 0.95]))  # IQM of 4 = middle two
    assert summary.loc["<b>bad</b>", "status"] == "invalid"
    assert "budget exceeded" in summary.loc["<b>bad</b>", "reason"]
    assert pd.isna(summary.loc["<b>bad</b>", "retention"])
    assert summary.loc["cnn_only", "status"] == "n/a"


def test_markdown_shows_reasons(tmp_path):
    text = markdown(summarise(table()))
    assert "| invalid: budget exceeded" in text and "n/a: cnn_only does not support Linear layers" in text


def test_site_is_self_contained_sortable_and_escaped(tmp_path):
    path = tmp_path / "table.csv"
    table().to_csv(path, index=False)
    render(path, tmp_path / "site", ["methods"], {"commit": "abc123"})
    site = tmp_path / "site"
    pages = sorted(site.glob("*.html"))
    assert [p.name for p in pages] == ["env-cartpole.html", "index.html", *sorted(
        page_name("method", m) for m in ("<b>bad</b>", "cnn_only", "good"))]
    for page in pages:
        html = page.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no external resources
        assert "<script src" not in html and "<link" not in html
        assert "<b>bad</b>" not in html  # a name with HTML in it is text
        assert 'href="env-cartpole.html"' in html  # every page links every other
    env = (site / "env-cartpole.html").read_text()
    assert "&lt;b&gt;bad&lt;/b&gt;" in env and 'class="sortable"' in env and "addEventListener" in env
    assert "data:image/png;base64," in env
    for plot in ("params", "latency", "instructions", "flash"):
        assert (site / "plots" / f"cartpole_score_vs_{plot}.png").stat().st_size > 1000
    text = (site / "leaderboard.md").read_text()  # read back from the CSV: "n/a" is not NaN
    assert "| n/a: cnn_only does not support Linear layers |" in text


def test_embedded_columns_are_shown_and_explained(tmp_path):
    path = tmp_path / "table.csv"
    table().to_csv(path, index=False)
    render(path, tmp_path / "site", ["methods"], {"commit": "abc123"})
    index = (tmp_path / "site" / "index.html").read_text()
    for header in ("latency µs", "speedup", "instructions", "flash", "RAM"):
        assert re.search(rf"<dt>{header}</dt><dd>[^<]+</dd>", index), header  # one line explains each metric
    env = (tmp_path / "site" / "env-cartpole.html").read_text()
    assert ">3.0 KiB<" in env and ">0.5 KiB<" in env and ">5,000<" in env and ">1.20×<" in env


def test_env_pages_show_each_teacher_beside_its_floor(tmp_path):
    """The teachers' returns, costs and floors come from their teacher.json files, the floor's source
    from the env spec; a teacher under its floor says so, and the mean row counts those that meet it."""
    path = tmp_path / "table.csv"
    table().to_csv(path, index=False)
    files = []
    for seed, (returns, meets) in enumerate([([480.0, 500.0], True), ([150.0, 170.0], False)]):
        files.append(tmp_path / f"teacher{seed}.json")
        write_json(files[-1], {"env": "cartpole", "seed": seed, "algo": "dqn", "timesteps": 50000,
                               "train_seconds": 600.0, "validation_return": returns[1], "eval_returns": returns,
                               "random_returns": [20.0, 22.0], "floor": 475, "meets_floor": meets})
    render(path, tmp_path / "site", ["methods"], {"commit": "abc123"}, teacher_files=files)
    teachers = pd.read_csv(tmp_path / "site" / "teachers.csv")
    assert teachers["return_mean"].tolist() == [490.0, 160.0] and teachers["train_minutes"].tolist() == [10.0, 10.0]
    assert teachers["floor_source"].iloc[0] == load_env_spec("cartpole")["teacher"]["floor"]["source"]
    env = re.sub(r"\s+", " ", (tmp_path / "site" / "env-cartpole.html").read_text())
    assert "<h2>Teachers</h2>" in env and env.index("Teachers</h2>") < env.index("Every method at every level")
    assert "<td>490.0 ± 10.0</td>" in env and "<td>no</td>" in env and "<td>1 of 2</td>" in env
    assert "### cartpole" in (tmp_path / "site" / "tables.md").read_text()
