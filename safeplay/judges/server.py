"""Any safeplay judge behind HTTP, so one judge serves many trainers (``safeplay judge serve``).

Routes (JSON in and out):

* ``POST /classify`` — ``{"items": [{"prompt", "response", "seed"?}, ...]}`` → ``{"verdicts": [...]}``, one per
  item in order (wire schema in ``schema.py``; the client is ``classify_client.HTTPClassifyJudge``);
* ``POST /v1/completions``, ``POST /v1/chat/completions`` — OpenAI-compatible, for the LLM-judge client
  (``openai_compat.py`` says how a judge prompt is answered);
* ``GET /health`` — status and counters; ``GET /v1/models`` — the judge formats served.

Requests from all connections go through one ``Batcher``, which coalesces them into judge calls of up to
``max_batch`` items. A malformed request gets a 4xx answer whose JSON ``error.message`` says what is wrong; a judge
that fails gets a 500 (clients retry 5xx). The standard library's threaded server keeps this dependency-free; it
binds the loopback interface unless told otherwise.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from safeplay.config import check
from safeplay.errors import SafeplayError
from safeplay.judges import openai_compat
from safeplay.judges.batcher import Batcher, BatchTimeout
from safeplay.judges.schema import item_from_dict, verdict_to_dict

log = logging.getLogger("safeplay")


@dataclass
class ServeConfig:
    """How ``safeplay judge serve`` listens and batches."""

    host: str = "127.0.0.1"
    """Interface to bind. Loopback by default: the server has no TLS; expose it only on a trusted network."""
    port: int = 8100
    """TCP port (0 = any free port)."""
    max_batch: int = 64
    """Most items per judge call; concurrent requests are coalesced up to this."""
    max_wait_ms: float = 5.0
    """How long the first waiting request may wait for others to join its batch."""
    max_items: int = 1024
    """Most items in one /classify request (larger requests get 413)."""
    max_body_mb: float = 32.0
    """Largest accepted request body in MB."""
    api_key_env: str | None = None
    """Environment variable holding a key that requests must send as ``Authorization: Bearer``; None = no key."""
    timeout_s: float = 600.0
    """Longest a request waits for its verdicts before it is answered 504."""

    def __post_init__(self) -> None:
        check(0 <= self.port <= 65535, "port", "must be in 0..65535")
        check(self.max_batch >= 1, "max_batch", "must be >= 1")
        check(self.max_wait_ms >= 0, "max_wait_ms", "must be >= 0")
        check(self.max_items >= 1, "max_items", "must be >= 1")
        check(self.max_body_mb > 0, "max_body_mb", "must be > 0")
        check(self.timeout_s > 0, "timeout_s", "must be > 0")


class RequestError(Exception):
    """A request the server will not serve: answered with ``status`` and ``message``."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 refuses bursts of concurrent clients
    app: "JudgeServer"


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "safeplay-judge"
    timeout = 120  # socket timeout: a client that announces more body than it sends does not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:  # per-request lines go to debug, not stderr
        log.debug("judge server: " + format, *args)

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, e: RequestError) -> None:
        self._send(e.status, {"error": {"message": e.message, "type": e.kind, "code": e.status}})

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            routes = app.routes.get(path)
            if routes is None:
                raise RequestError(404, f"no route {path}; routes: {', '.join(sorted(app.routes))}", "not_found")
            handler = routes.get(method)
            if handler is None:
                raise RequestError(405, f"{path} takes {' or '.join(sorted(routes))}, not {method}", "method_not_allowed")
            app.authorize(self.headers.get("Authorization"))
            body = self._read_json() if method == "POST" else None
            self._send(200, handler(body))
        except RequestError as e:
            self._error(e)
        except Exception as e:  # the judge failed: a server-side error, which clients may retry
            log.warning("judge server: %s failed: %s: %s", path, type(e).__name__, e)
            self._error(RequestError(500, f"the judge failed: {type(e).__name__}: {e}", "server_error"))

    def _read_json(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(411, "a POST needs a Content-Length header")
        try:
            n = int(length)
        except ValueError:
            raise RequestError(400, f"Content-Length {length!r} is not a number") from None
        if n > self.server.app.max_body:
            raise RequestError(413, f"body of {n} bytes is over the limit of {self.server.app.max_body}")
        raw = self.rfile.read(n)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise RequestError(400, f"body is not valid JSON: {e}") from None

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")


class JudgeServer:
    """A judge served over HTTP. ``start()`` serves in a background thread, ``serve_forever()`` in this one."""

    def __init__(self, judge: Any, cfg: ServeConfig | None = None):
        self.cfg = cfg = cfg or ServeConfig()
        self.judge = judge
        self.max_body = int(cfg.max_body_mb * 1024 * 1024)
        self.api_key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
        if cfg.api_key_env and not self.api_key:
            raise SafeplayError(f"api_key_env={cfg.api_key_env} is set but that environment variable is empty")
        self.batcher = Batcher(judge, cfg.max_batch, cfg.max_wait_ms / 1000)
        self.routes = {
            "/classify": {"POST": self.classify},
            "/v1/completions": {"POST": self.completions},
            "/v1/chat/completions": {"POST": self.chat_completions},
            "/health": {"GET": self.health},
            "/v1/models": {"GET": lambda _: openai_compat.models_response()},
        }
        try:
            self.httpd = _HTTPServer((cfg.host, cfg.port), _Handler)
        except OSError as e:
            raise SafeplayError(f"cannot listen on {cfg.host}:{cfg.port}: {e.strerror or e}") from None
        self.httpd.app = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "JudgeServer":
        # a short poll interval: close() waits up to one interval for the serving loop to notice
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="judge-server",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C / SIGINT raises ``KeyboardInterrupt`` here).

        The serving loop runs in its own thread and this one only waits for it: an interrupt then always lands
        in a plain wait, never half-way into the loop's start, so ``close()`` can stop the loop cleanly."""
        self.start()
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def close(self) -> None:
        if self._thread is not None:
            # Only a started loop can answer shutdown(); asked before a loop ever ran, it would wait forever.
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()
        self.batcher.close()

    def __enter__(self) -> "JudgeServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- routes ----------------------------------------------------------------------------------------------

    def authorize(self, header: str | None) -> None:
        if self.api_key is None:
            return
        sent = header[len("Bearer "):] if header and header.startswith("Bearer ") else ""
        if not hmac.compare_digest(sent.encode(), self.api_key.encode()):
            raise RequestError(401, "missing or wrong API key (send Authorization: Bearer <key>)", "authentication_error")

    def _verdicts(self, items: list) -> list:
        try:
            return self.batcher.submit(items, timeout=self.cfg.timeout_s)
        except BatchTimeout:
            raise RequestError(504, f"no verdicts within {self.cfg.timeout_s:g}s", "timeout") from None

    def classify(self, body: Any) -> dict:
        if not isinstance(body, dict) or "items" not in body:
            raise RequestError(400, 'body must be an object {"items": [{"prompt": ..., "response": ...}, ...]}')
        raw = body["items"]
        if not isinstance(raw, list):
            raise RequestError(400, "field 'items' must be a list")
        if len(raw) > self.cfg.max_items:
            raise RequestError(413, f"{len(raw)} items is over the limit of {self.cfg.max_items} per request")
        items = []
        for i, d in enumerate(raw):
            try:
                items.append(item_from_dict(d))
            except SafeplayError as e:
                raise RequestError(400, f"items[{i}]: {e}") from None
        return {"verdicts": [verdict_to_dict(v) for v in self._verdicts(items)]}

    def completions(self, body: Any) -> dict:
        fmt, items = self._openai(openai_compat.completion_items, body)
        if len(items) > self.cfg.max_items:
            raise RequestError(413, f"{len(items)} prompts is over the limit of {self.cfg.max_items} per request")
        return openai_compat.completion_response(fmt, self._verdicts(items))

    def chat_completions(self, body: Any) -> dict:
        fmt, item = self._openai(openai_compat.chat_item, body)
        return openai_compat.chat_response(fmt, self._verdicts([item])[0])

    @staticmethod
    def _openai(parse: Any, body: Any) -> Any:
        if not isinstance(body, dict):
            raise RequestError(400, "body must be a JSON object")
        try:
            return parse(body)
        except openai_compat.UnknownModel as e:
            raise RequestError(404, str(e), "model_not_found") from None
        except SafeplayError as e:
            raise RequestError(400, str(e)) from None

    def health(self, _: Any) -> dict:
        return {"status": "ok", "judge": getattr(self.judge, "name", type(self.judge).__name__),
                "formats": list(openai_compat.SERVED_FORMATS), **self.batcher.stats()}
