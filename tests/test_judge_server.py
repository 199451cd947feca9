"""``safeplay judge serve``'s server on loopback: concurrent load, malformed requests, and the project's own HTTP
judge clients (the OpenAI-compatible LLM-judge client and the /classify client) talking to it."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from fakes import FakeJudge
from safeplay.errors import SafeplayError
from safeplay.judges.base import JudgeItem, Verdict
from safeplay.judges.classify_client import HTTPClassifyJudge
from safeplay.judges.llm import LLMJudge, OpenAIBackend
from safeplay.judges.prompts import FORMATS, WILDGUARD
from safeplay.judges.server import JudgeServer, ServeConfig


class EchoJudge:
    """Every verdict carries its own item (in ``raw``), so a verdict handed to the wrong request shows."""

    name = "echo"

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.lock = threading.Lock()

    def judge(self, items):
        with self.lock:
            self.batch_sizes.append(len(items))
        return [Verdict(len(it.prompt) % 2 == 0, "no" in it.response, False,
                        "refusal" if "no" in it.response else "helpful", raw=f"{it.prompt}|{it.response}|{it.seed}",
                        judge=self.name) for it in items]


@pytest.fixture(scope="module")
def served_fake():
    with JudgeServer(FakeJudge(), ServeConfig(port=0, max_batch=5)) as server:
        yield server


@pytest.fixture
def echo():
    judge = EchoJudge()
    with JudgeServer(judge, ServeConfig(port=0, max_batch=32, max_wait_ms=10)) as server:
        yield server, judge


def request(url, body=None, method=None, raw: bytes | None = None, headers=None):
    """(status, parsed JSON body) of one request, 4xx/5xx included."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_binds_loopback_by_default(echo):
    server, _ = echo
    assert server.url.startswith("http://127.0.0.1:")
    assert ServeConfig().host == "127.0.0.1"


def test_200_requests_16_concurrent_no_lost_or_mismatched_verdicts(echo):
    server, judge = echo

    def one(n):
        items = [{"prompt": f"request {n} item {k}", "response": "no" if (n + k) % 3 == 0 else "sure",
                  "seed": f"s{n}"} for k in range(1 + n % 4)]
        status, body = request(server.url + "/classify", {"items": items})
        return n, items, status, body

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(200)))
    assert len(results) == 200
    for n, items, status, body in results:
        assert status == 200, body
        got = body["verdicts"]
        assert [v["raw"] for v in got] == [f"{it['prompt']}|{it['response']}|{it['seed']}" for it in items], n
        assert [v["refusal"] for v in got] == ["no" in it["response"] for it in items]
    total = sum(len(items) for _, items, _, _ in results)
    assert sum(judge.batch_sizes) == total  # every item judged exactly once
    assert len(judge.batch_sizes) < 200 and max(judge.batch_sizes) <= 32  # requests were coalesced, within max_batch
    status, health = request(server.url + "/health")
    assert status == 200 and health["requests"] == 200 and health["items"] == total and health["errors"] == 0


@pytest.mark.parametrize("path, body, raw, status, message", [
    ("/classify", None, b"{not json", 400, "not valid JSON"),
    ("/classify", {"itemz": []}, None, 400, '{"items"'),
    ("/classify", {"items": "abc"}, None, 400, "'items' must be a list"),
    ("/classify", {"items": [{"prompt": "p"}]}, None, 400, "items[0]: each item needs string fields"),
    ("/classify", {"items": [{"prompt": "p", "response": "r", "seed": 3}]}, None, 400, "items[0]: item field 'seed'"),
    ("/classify", {"items": [{"prompt": "p", "response": "r"}] * 2000}, None, 413, "over the limit of 1024"),
    ("/v1/completions", {"prompt": "x"}, None, 400, "'model' must name a judge format"),
    ("/v1/completions", {"model": "gpt-4", "prompt": "x"}, None, 404, "'gpt-4' is not served here; served: wildguard"),
    ("/v1/completions", {"model": "wildguard", "prompt": 3}, None, 400, "'prompt' must be a string"),
    ("/v1/completions", {"model": "wildguard", "prompt": "hello"}, None, 400, "not a wildguard judge prompt"),
    ("/v1/completions", {"model": "wildguard", "prompt": "x", "stream": True}, None, 400, "streaming is not supported"),
    ("/v1/chat/completions", {"model": "wildguard", "messages": []}, None, 400, "'messages' must be a non-empty list"),
    ("/v1/chat/completions", {"model": "wildguard", "messages": [{"role": "user"}]}, None, 400, "messages[0]"),
    ("/v1/chat/completions", [1, 2], None, 400, "body must be a JSON object"),
    ("/nowhere", {}, None, 404, "no route /nowhere"),
])
def test_malformed_requests_get_4xx_with_a_clear_message(echo, path, body, raw, status, message):
    server, judge = echo
    got, answer = request(server.url + path, body, raw=raw)
    assert got == status
    assert message in answer["error"]["message"] and answer["error"]["code"] == status
    assert judge.batch_sizes == []  # nothing malformed reached the judge


def test_wrong_method_and_get_routes(echo):
    server, _ = echo
    status, answer = request(server.url + "/classify", method="GET")
    assert status == 405 and "takes POST" in answer["error"]["message"]
    status, models = request(server.url + "/v1/models")
    assert status == 200 and {m["id"] for m in models["data"]} == set(FORMATS)


def test_api_key_required_when_configured(monkeypatch):
    monkeypatch.setenv("SERVE_KEY", "sk-serve")
    with JudgeServer(EchoJudge(), ServeConfig(port=0, api_key_env="SERVE_KEY")) as server:
        body = {"items": [{"prompt": "p", "response": "r"}]}
        assert request(server.url + "/classify", body)[0] == 401
        assert request(server.url + "/classify", body, headers={"Authorization": "Bearer sk-serve"})[0] == 200
        monkeypatch.setenv("SAFEPLAY_JUDGE_API_KEY", "sk-serve")  # the clients' default key variable
        assert HTTPClassifyJudge(server.url, timeout=5).judge([JudgeItem("p", "r")])[0].judge == "echo"


def test_judge_failure_is_a_500_that_clients_retry_then_report():
    with JudgeServer(FakeJudge(fail_on_calls=[1, 2, 3]), ServeConfig(port=0)) as server:
        status, answer = request(server.url + "/classify", {"items": [{"prompt": "p", "response": "r"}]})
        assert status == 500 and "fake judge timed out" in answer["error"]["message"]
        client = HTTPClassifyJudge(server.url, timeout=5, retries=1, backoff=0.01)
        with pytest.raises(SafeplayError, match="HTTP 500"):
            client.judge([JudgeItem("p", "r")])  # calls 2 and 3 fail too
        assert client.judge([JudgeItem("p", "r")])[0].judge == "fake"  # call 4 succeeds


ITEMS = [JudgeItem(f"How do I do task number {i}?", "I will not help with that." if i % 2 else f"Step {i}: do it.")
         for i in range(12)]


@pytest.mark.parametrize("api", ["completions", "chat"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_llm_judge_client_end_to_end(served_fake, fmt, api):
    """The LLM-judge client, unchanged, pointed at a served FakeJudge: the verdicts of the judge it serves."""
    expected = FakeJudge().judge(ITEMS)
    client = LLMJudge(FORMATS[fmt], OpenAIBackend(served_fake.url, fmt, api=api, timeout=10, concurrency=4))
    got = client.judge(ITEMS)
    assert not any(v.unparseable for v in got)
    for want, v in zip(expected, got):
        if fmt == "wildguard":
            assert (v.prompt_harmful, v.refusal, v.response_harmful, v.label) == (
                want.prompt_harmful, want.refusal, want.response_harmful, want.label)
        elif fmt == "llama-guard":  # Llama Guard decides harm only
            assert v.response_harmful == want.response_harmful
        elif fmt == "ssp-score":
            assert v.score == want.score and v.response_harmful == want.response_harmful
        elif fmt == "strongreject":  # the rubric's anchors: harmful help, or (anything else) a refusal
            assert v.response_harmful == want.response_harmful and v.refusal == (not want.response_harmful)
        else:
            assert v.label == want.label


def test_classify_client_end_to_end_with_the_registry(served_fake):
    from safeplay.judges.registry import build_judge

    client = build_judge("classify", url=served_fake.url, batch_size=7, timeout=10)
    assert client.judge(ITEMS) == FakeJudge().judge(ITEMS)


def test_wildguard_prompt_round_trip_keeps_multiline_texts():
    from safeplay.judges.openai_compat import item_from_text

    item = JudgeItem("line one\n\nline two", "Answer:\n- a\n- b")
    assert item_from_text("wildguard", WILDGUARD.raw(item)) == item


def test_serve_command_bad_judge_is_a_clear_error(capsys):
    from safeplay.cli import main

    assert main(["judge", "serve", "--judge", "nope", "--port", "0"]) == 2
    assert "unknown judge 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_command_serves_until_stopped():
    """``safeplay judge serve`` as a user starts it: prints its URL, answers, stops on SIGINT."""
    import os
    import signal
    import subprocess
    import sys

    def as_a_shell_starts_it():
        # A child inherits its parent's blocked signals and ignored dispositions across exec; after other tests
        # (a local Ray cluster) this test process may have SIGINT blocked, which no user's shell does.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen([sys.executable, "-m", "safeplay.cli", "judge", "serve", "--judge", "keyword", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"}, preexec_fn=as_a_shell_starts_it)
    try:
        line = proc.stdout.readline()
        assert "serving judge keyword on http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split(" on ", 1)[1].split()[0]
        status, health = request(url + "/health")
        assert status == 200 and health["judge"] == "keyword"
        status, body = request(url + "/classify", {"items": [{"prompt": "How do I hurt someone?",
                                                              "response": "I'm sorry, I can't help with that."}]})
        assert status == 200 and body["verdicts"][0]["refusal"] is True
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler (PYTHONFAULTHANDLER) writes every thread's stack
            try:
                err = proc.communicate(timeout=10)[1]
            except subprocess.TimeoutExpired:
                proc.kill()
                err = proc.communicate()[1]
            raise AssertionError("judge serve did not stop within 20 s of SIGINT: " + err[-4000:])
    assert proc.returncode == 130, proc.stderr.read()  # the CLI's answer to an interrupt
