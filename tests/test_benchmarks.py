"""Benchmark loaders on the published files: row counts from each PROVENANCE.md, sha256 checks, clear errors."""

from __future__ import annotations

from collections import Counter

import pytest

from safeplay.data.benchmark_loaders import DAN_SLOT
from safeplay.data.benchmarks import BENCHMARKS, eval_prompt_texts, load_benchmark
from safeplay.data.checksums import SHA256
from safeplay.data.sources import sha256_of
from safeplay.errors import SafeplayError

# (benchmark, items) — PROVENANCE counts: HarmBench test 320 = 159 standard + 81 contextual + 80 copyright;
# XSTest 250 safe / 200 unsafe; StrongREJECT 313 / 60; JBB 100; WildJailbreak eval 2,000 / 210;
# Do-Not-Answer 939; GSM8K 1,319; MMLU 57 subjects × 10; JBB artifacts: 18 files × 100 minus empty prompts.
EXPECTED = {
    "harmbench": 240,
    "xstest-safe": 250,
    "xstest-unsafe": 200,
    "strongreject": 313,
    "strongreject-small": 60,
    "jbb-harmful": 100,
    "wildjailbreak-adv-harmful": 2000,
    "wildjailbreak-adv-benign": 210,
    "do-not-answer": 939,
    "dan": 300,
    "gsm8k": 1319,
    "mmlu": 570,
}


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch, tmp_path):
    monkeypatch.setenv("SAFEPLAY_OFFLINE", "1")
    monkeypatch.setenv("SAFEPLAY_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_row_counts(name, data_dir):
    items = load_benchmark(name, data_dir=data_dir)
    assert len(items) == EXPECTED[name]
    assert len({it.id for it in items}) == len(items)
    assert all(it.prompt.strip() for it in items)


def test_every_registered_file_matches_its_recorded_sha256(data_dir):
    for spec in BENCHMARKS.values():
        for rel, digest in spec.sha256.items():
            assert sha256_of(data_dir / rel) == digest, rel
            # the recorded value extends the abbreviated one in the folder's PROVENANCE.md
            provenance = (data_dir / rel.split("/")[0] / "PROVENANCE.md").read_text(encoding="utf-8")
            assert digest[:16] in provenance, rel


def test_harmbench_split_contents(data_dir):
    items = load_benchmark("harmbench", data_dir=data_dir)
    kinds = Counter(it.extra["functional_category"] for it in items)
    assert kinds == {"standard": 159, "contextual": 81}
    contextual = next(it for it in items if it.extra["functional_category"] == "contextual")
    assert contextual.prompt.endswith(contextual.extra["behavior"]) and len(contextual.prompt) > len(
        contextual.extra["behavior"]) + 20


def test_jbb_artifacts_carry_the_method(data_dir):
    items = load_benchmark("jbb-artifacts", data_dir=data_dir)
    methods = Counter(it.category for it in items)
    assert set(methods) == {"PAIR", "GCG", "JBC", "prompt_with_random_search", "DSN"}
    assert methods["JBC"] == 400  # the AIM template never fails to produce a prompt
    assert all(it.harmful and 0 <= it.extra["behavior_index"] < 100 for it in items)


def test_dan_is_deterministic_and_uses_every_template(data_dir):
    a = load_benchmark("dan", data_dir=data_dir)
    b = load_benchmark("dan", data_dir=data_dir)
    assert [it.prompt for it in a] == [it.prompt for it in b]
    assert all(DAN_SLOT not in it.prompt and it.extra["behavior"] in it.prompt for it in a)
    uses = Counter(it.extra["template_index"] for it in a)
    assert len(uses) == 89 and min(uses.values()) >= 3
    standard = {it.extra["behavior"] for it in load_benchmark("harmbench", data_dir=data_dir)
                if it.extra["functional_category"] == "standard"}
    assert {it.extra["behavior"] for it in a} <= standard


def test_limit_is_a_fixed_seeded_subset(data_dir):
    full = load_benchmark("xstest-safe", data_dir=data_dir)
    a = load_benchmark("xstest-safe", data_dir=data_dir, limit=20)
    b = load_benchmark("xstest-safe", data_dir=data_dir, limit=20)
    c = load_benchmark("xstest-safe", data_dir=data_dir, limit=20, seed=1)
    assert [it.id for it in a] == [it.id for it in b] != [it.id for it in c]
    order = [it.id for it in full]
    assert [order.index(it.id) for it in a] == sorted(order.index(it.id) for it in a)
    assert len(load_benchmark("xstest-safe", data_dir=data_dir, limit=10_000)) == 250


def test_capability_items(data_dir):
    gsm = load_benchmark("gsm8k", data_dir=data_dir, limit=5)
    assert all(it.extra["reference"].lstrip("-").replace(".", "").isdigit() for it in gsm)
    mmlu = load_benchmark("mmlu", data_dir=data_dir)
    assert len({it.category for it in mmlu}) == 57
    assert all(len(it.extra["choices"]) == 4 and it.extra["answer"] in range(4) for it in mmlu)


@pytest.mark.slow
def test_eval_prompt_texts_cover_held_out_sets(data_dir):
    texts = set(eval_prompt_texts(data_dir))
    for name in ("harmbench", "xstest-safe", "wildjailbreak-adv-benign", "do-not-answer", "strongreject"):
        assert {it.prompt for it in load_benchmark(name, data_dir=data_dir)} <= texts
    gsm = load_benchmark("gsm8k", data_dir=data_dir, limit=3)
    assert not {it.prompt for it in gsm} & texts
    # raw DAN templates and bare HarmBench behaviours are listed so training seeds can avoid them
    assert sum(DAN_SLOT in t for t in texts) == 89
    assert all(it.extra["behavior"] in texts for it in load_benchmark("harmbench", data_dir=data_dir))


def test_corrupt_file_is_a_clear_error(data_dir, tmp_path):
    copy = tmp_path / "data"
    (copy / "xstest").mkdir(parents=True)
    original = (data_dir / "xstest" / "xstest_prompts.csv").read_bytes()
    (copy / "xstest" / "xstest_prompts.csv").write_bytes(original.replace(b"kill", b"hug!", 1))
    with pytest.raises(SafeplayError, match=r"xstest_prompts\.csv is corrupt.*sha256"):
        load_benchmark("xstest-safe", data_dir=copy)


def test_missing_file_offline_names_file_and_env_var(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SafeplayError, match=r"strongreject/strongreject_dataset\.csv not found.*SAFEPLAY_DATA_DIR"):
        load_benchmark("strongreject", data_dir=empty)


def test_unknown_benchmark():
    with pytest.raises(SafeplayError, match="unknown benchmark 'nope'; known: harmbench"):
        load_benchmark("nope")


def test_registry_specs_are_complete():
    from safeplay.data.benchmarks import VALIDATION

    for name in VALIDATION:  # built from held-out training seeds (safeplay.data.validation), no files of their own
        assert BENCHMARKS[name].source.startswith("this project") and not BENCHMARKS[name].files
    for name, spec in BENCHMARKS.items():
        if name in VALIDATION:
            continue
        assert spec.name == name and spec.description and spec.source.startswith("https://")
        assert spec.files and all(rel in SHA256 for rel in spec.files)
        assert all(src.url.startswith("https://") for src in spec.urls.values())
