"""``safeplay judge calibrate``: the JSON it writes (keyword judge only, so no embedding model is needed)."""

from __future__ import annotations

import json

import pytest

from safeplay.cli import main


@pytest.mark.slow
def test_calibrate_keyword_writes_the_documented_json(data_dir, tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert main(["judge", "calibrate", "--judge", "keyword", "--limit", "40", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"judges", "split"} and list(result["judges"]) == ["keyword"]
    k = result["judges"]["keyword"]
    for label in ("refusal", "response_harmful"):
        assert set(k[label]) >= {"f1", "accuracy", "confusion", "n"} and 30 <= k[label]["n"] <= 40
        assert sum(k[label]["confusion"].values()) == k[label]["n"]  # items without that human label are skipped
    assert k["prompt_harmful"]["f1"] is None and k["prompt_harmful"]["n"] == 0
    assert k["keyword_hacked"]["n"] == 40 and k["keyword_hacked"]["judged_refusal"] > 0.5
    for key in ("adversarial_refusals", "wildjailbreak_refusals"):  # refusals after jailbreak prompts
        assert k[key]["n"] == 40 and 0 <= k[key]["judged_refusal"] <= 1
    assert result["split"]["xstest"]["unit"].startswith("prompt id") and result["split"]["evaluated"]["limit"] == 40
    assert "held-out human labels" in capsys.readouterr().out


def test_calibrate_option_errors(capsys):
    assert main(["judge", "calibrate", "--judge", "keyword", "-o", "novalue"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
