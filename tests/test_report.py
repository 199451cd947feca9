"""HTML reports: detection, content, escaping of untrusted texts (checked in headless Chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from safeplay.errors import SafeplayError
from safeplay.eval.report import build_report, detect, write_report

XSS = "<script>document.title='PWNED';var d=document.createElement('div');d.id='xss-ran';document.body.appendChild(d)</script>"
XSS_IMG = "<img src=x onerror=\"document.title='PWNED'\" id=xss-img>"


def make_run(root: Path) -> Path:
    root.mkdir(parents=True)
    rows = []
    for step in range(1, 9):
        rows.append({"step": step, "kind": "train", "defender/reward_mean": step / 10, "attacker/reward_mean": -step / 10,
                     "rates/unsafe": 0.5 - step / 40, "kl": 0.01 * step, "note": "text is ignored"})
    rows.insert(0, {"step": 0, "kind": "eval", "stage": "start", "harmbench/asr": 0.8, "harmbench/refusal_rate": 0.1,
                    "xstest-safe/compliance_rate": 0.9, "harmbench/by_category/illegal": 0.5})
    rows.insert(1, {"step": 0, "kind": "eval", "stage": "after_warm_start", "harmbench/asr": 0.15,
                    "harmbench/refusal_rate": 0.7, "xstest-safe/compliance_rate": 0.8})
    rows.append({"step": 8, "kind": "eval", "stage": "end", "harmbench/asr": 0.4, "harmbench/refusal_rate": 0.5,
                 "xstest-safe/compliance_rate": 0.85, "harmbench/by_category/illegal": 0.3})
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 9, "trunc')
    game = {"step": 8, "source": "fresh", "seed": f"seed text {XSS}", "seed_harmful": True, "attacked": True,
            "tactic": f"roleplay {XSS_IMG}",
            "attacker": {"thinking": f"attacker plans {XSS}", "public": f"attack prompt {XSS}"},
            "query": "attack prompt", "defender": {"thinking": f"defender thinks {XSS}", "public": f"answer {XSS_IMG}"},
            "verdict": {"prompt_harmful": True, "refusal": False, "response_harmful": True, "label": "unsafe",
                        "judge": "fake<b>judge</b>"},
            "rewards": {"attacker": 1.0, "defender": -1.0}}
    (root / "games.jsonl").write_text(json.dumps(game) + "\n")
    (root / "config.yaml").write_text(f"recipe: self-redteam\nnote: '{XSS}'\n")
    return root


def make_evaluation(root: Path) -> Path:
    root.mkdir(parents=True)
    results = {"model": f"m{XSS}", "judge": "fake-judge", "limit": 2, "benchmarks": {
        "harmbench": {"primary": "asr", "higher_is_better": False, "asr": 0.5, "refusal_rate": 0.5,
                      "keyword_hack_rate": 0.0, "by_category": {f"cat{XSS}": 0.5}, "n": 2, "judge": "fake-judge"},
        "xstest-safe": {"primary": "compliance_rate", "higher_is_better": True, "compliance_rate": 1.0, "n": 2,
                        "judge": "fake-judge"}}}
    (root / "results.json").write_text(json.dumps(results))
    gens = [{"benchmark": "harmbench", "id": "a", "category": "c", "prompt": f"p {XSS}", "output": "o",
             "answer": f"I'm sorry {XSS}", "keyword_hack": True,
             "verdict": {"refusal": True, "response_harmful": True, "judge": "fake-judge"}},
            {"benchmark": "xstest-safe", "id": "b", "category": "c", "prompt": "q", "output": "o", "answer": XSS_IMG,
             "verdict": {"refusal": False, "response_harmful": False, "judge": "fake-judge"}}]
    (root / "generations.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens))
    return root


def make_comparison(root: Path) -> Path:
    root.mkdir(parents=True)
    arms = {"base": {"harmbench": {"primary": "asr", "asr": 0.8, "judge": "fake-judge"},
                     "xstest-safe": {"primary": "compliance_rate", "compliance_rate": 0.95, "judge": "fake-judge"}},
            f"trained{XSS}": {"harmbench": {"primary": "asr", "asr": 0.3, "asr_std": 0.05, "judge": "fake-judge"},
                              "xstest-safe": {"primary": "compliance_rate", "compliance_rate": 0.9,
                                              "judge": "fake-judge"}}}
    (root / "ablation.json").write_text(json.dumps({"arms": arms, "judge": "fake-judge"}))
    return root


def test_detect(tmp_path):
    assert detect(make_run(tmp_path / "run"))[0] == "run"
    assert detect(make_evaluation(tmp_path / "ev"))[0] == "evaluation"
    assert detect(make_comparison(tmp_path / "cmp"))[0] == "comparison"
    assert detect(tmp_path / "cmp" / "ablation.json")[0] == "comparison"
    (tmp_path / "empty").mkdir()
    with pytest.raises(SafeplayError, match="found none of metrics.jsonl"):
        detect(tmp_path / "empty")


@pytest.mark.slow
@pytest.mark.parametrize("maker", [make_run, make_evaluation, make_comparison])
def test_untrusted_text_is_escaped(tmp_path, maker):
    html = build_report(maker(tmp_path / "x"))
    assert "<script>document" not in html and "onerror=\"document" not in html
    assert "&lt;script&gt;document.title=" in html
    assert html.count("<img ") == html.count('src="data:image/png;base64,')  # only our plots are images
    assert "Content-Security-Policy" in html


@pytest.mark.slow
def test_run_report_content(tmp_path):
    html = build_report(make_run(tmp_path / "run"))
    assert html.count('src="data:image/png;base64,') >= 2  # curves + before/after bars
    assert "harmbench" in html and "0.800" in html and "0.400" in html  # first vs last eval
    # …and the warm start between them: a reader sees what RL added over it
    assert "0.150" in html and "after warm start (step 0)" in html and "before training (step 0)" in html
    assert "end (step 8)" in html
    assert "attacker thinking (hidden)" in html and "defender thinking (hidden)" in html
    assert "by_category" not in html  # nested breakdowns are not headline rows


def test_comparison_report_lists_arms(tmp_path):
    html = build_report(make_comparison(tmp_path / "cmp"))
    assert "<th>base</th>" in html and "trained&lt;script&gt;" in html and "0.300 ± 0.050" in html
    assert "asr_std" not in html


@pytest.mark.slow
def test_write_report_default_location(tmp_path):
    run = make_run(tmp_path / "run")
    assert write_report(run) == run / "report.html"
    assert (run / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_report_command(tmp_path, capsys):
    from safeplay.cli import main

    ev = make_evaluation(tmp_path / "ev")
    assert main(["report", str(ev), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").is_file()
    assert main(["report", str(tmp_path / "nope")]) == 2


# --- headless Chromium: no script runs, plots decode -------------------------------------------------------------

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _dump_dom(browser: str, page: Path, profile: Path) -> str:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom",
           page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="no Chromium binary (apt-get install chromium); CI installs it")
@pytest.mark.parametrize("maker", [make_run, make_evaluation])
def test_report_in_headless_chromium(tmp_path, maker):
    browser = _chromium()
    page = write_report(maker(tmp_path / "x"), tmp_path / "report.html")

    dom = _dump_dom(browser, page, tmp_path / "profile-a")
    # the browser parsed the page: our own markup is there, the injected markup is only text (a script that ran
    # would have renamed the page and added a div; an injected <img> would be an element with its id)
    assert "<h1>" in dom
    assert "PWNED" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert 'id="xss-ran"' not in dom and 'id="xss-img"' not in dom
    assert "&lt;script&gt;document.title=" in dom

    # Do the embedded PNGs decode? Check a copy of the page with a probe script appended (the CSP is removed from
    # the copy only, since it rightly forbids every script): it writes each image's natural width into the title.
    probe = tmp_path / "probe.html"
    html = page.read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    html = html.replace("</body>", "<script>window.addEventListener('load',function(){var w=[];"
                        "document.querySelectorAll('img.plot').forEach(function(i){w.push(i.complete?i.naturalWidth:-1)});"
                        "document.title='widths:'+w.join(',');});</script></body>")
    probe.write_text(html, encoding="utf-8")
    dom = _dump_dom(browser, probe, tmp_path / "profile-b")
    title = re.search(r"<title>widths:([^<]*)</title>", dom)
    assert title, dom[:500]
    widths = [int(w) for w in title.group(1).split(",") if w]
    assert widths and all(w > 50 for w in widths)
