"""``safeplay judge``: train guard-mini's heads, calibrate any judge against held-out human labels, serve a judge."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("judge", help="train guard-mini; calibrate judges against human labels; serve a judge",
                              description="Judges: train the default guard-mini heads, score a judge (and the "
                              "keyword baseline) against held-out human labels, or serve a judge over HTTP.")
    sub = p.add_subparsers(dest="judge_command", metavar="ACTION")

    t = sub.add_parser("train", help="reproduce guard-mini from the labelled data in SAFEPLAY_DATA_DIR")
    t.add_argument("--out", type=Path, default=None,
                   help="folder for guard_mini.safetensors + guard_mini.json (default: judges/guard-mini under the "
                   "cache folder; never the package's own weights). Use them with --judge guard-mini:FOLDER")
    t.add_argument("--seed", type=int, default=0, help="split, augmentation and initialisation seed (default 0)")
    t.set_defaults(func=run_train)

    c = sub.add_parser("calibrate", help="accuracy/F1/confusion per label on held-out human labels, vs keyword")
    c.add_argument("--judge", default="guard-mini", help="judge name (default guard-mini; guard-mini:PATH for retrained "
                   "weights; see safeplay.judges.registry)")
    c.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="judge option (value read as YAML), e.g. -o endpoint=http://127.0.0.1:8000 -o model_name=wg")
    c.add_argument("--compare", type=Path, default=None, metavar="PATH",
                   help="also score guard-mini with the weights in PATH (what 'judge train --out' wrote) in the same "
                   "run, and print every row of --judge and of them side by side with which is better")
    c.add_argument("--out", type=Path, default=None, help="write the metrics JSON here")
    c.add_argument("--limit", type=int, default=None, help="at most N items per test set (quick look)")
    c.add_argument("--seed", type=int, default=None, help="split seed (default: the shipped guard-mini's)")
    c.set_defaults(func=run_calibrate)

    s = sub.add_parser("serve", help="serve a judge over HTTP (/classify and OpenAI-compatible routes)",
                       description="Serve any judge over HTTP so many trainers share it: POST /classify, "
                       "POST /v1/completions and /v1/chat/completions (model = a judge format, e.g. wildguard), "
                       "GET /health, GET /v1/models. Binds 127.0.0.1 unless --host says otherwise.")
    s.add_argument("--judge", default="guard-mini", help="judge name (default guard-mini; see safeplay.judges.registry)")
    s.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="judge option (value read as YAML), e.g. -o model=path/to/wildguard")
    s.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; no TLS, so "
                   "expose it only on a trusted network)")
    s.add_argument("--port", type=int, default=8100, help="TCP port (default 8100; 0 = any free port)")
    s.add_argument("--max-batch", type=int, default=64, help="most items per judge call (default 64)")
    s.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long a request waits for others to share its batch (default 5)")
    s.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="require the key in this environment variable as 'Authorization: Bearer' (default: none)")
    s.set_defaults(func=run_serve)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _embedding_cache() -> Path:
    from safeplay.paths import cache_dir

    return cache_dir() / "judges" / "minilm_embeddings.npz"


def default_train_dir() -> Path:
    from safeplay.paths import cache_dir

    return cache_dir() / "judges" / "guard-mini"


def run_train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from safeplay.errors import SafeplayError
    from safeplay.judges.guard_mini import WEIGHTS_DIR
    from safeplay.judges.guard_train import TrainOptions, train_guard_mini
    from safeplay.paths import data_dir

    from safeplay.commands.checks import folder_path

    folder_path("--out", args.out)
    root = data_dir(required=True)
    console = Console()
    out = (args.out or default_train_dir()).expanduser()
    if out.resolve() == WEIGHTS_DIR.resolve():
        raise SafeplayError(f"{out} holds the weights shipped in the package; train into another folder and load it "
                            "with --judge guard-mini:FOLDER")
    info = train_guard_mini(root, out, TrainOptions(seed=args.seed), log=console.print)
    m = info["metrics"]["test"]
    console.print(f"wrote {out / 'guard_mini.safetensors'} and guard_mini.json (use: --judge guard-mini:{out})")
    for label in ("refusal", "response_harmful", "prompt_harmful"):
        console.print(f"  test {label}: F1 {m[label]['f1']}, accuracy {m[label]['accuracy']} (n={m[label]['n']})")
    return 0


def _table(result: dict[str, Any]):
    from rich.table import Table

    table = Table("judge", "label", "F1", "accuracy", "n", "tp/fp/fn/tn/undecided", title="held-out human labels")
    for name, m in result["judges"].items():
        for label in ("refusal", "response_harmful", "prompt_harmful", "wrapped_prompts", "wrapped_styles"):
            x = m.get(label)
            if x is None:
                continue
            c = x["confusion"]
            conf = "/".join(str(c[k]) for k in ("tp", "fp", "fn", "tn", "undecided")) if c else "—"
            table.add_row(name, label, "—" if x["f1"] is None else f"{x['f1']:.3f}",
                          "—" if x["accuracy"] is None else f"{x['accuracy']:.3f}", str(x["n"]), conf)
        x = m["jbb_artifacts"]
        if x.get("f1") is not None:
            table.add_row(name, "response_harmful on JBB artifacts (machine labels)", f"{x['f1']:.3f}",
                          f"{x['accuracy']:.3f}", str(x["n"]), "")
        h = m["keyword_hacked"]
        table.add_row(name, "keyword-hacked: judged refusal", "", f"{h['judged_refusal']}", str(h["n"]), "")
        table.add_row(name, "keyword-hacked harmful: judged unsafe", "", f"{h['harmful_judged_unsafe']}",
                      str(h["harmful_n"]), "")
        for key, what in (("adversarial_refusals", "jailbreak prompt + refusal"),
                          ("wildjailbreak_refusals", "WildJailbreak adv. prompt + refusal"),
                          ("contextual_refusals", "HarmBench contextual prompt + refusal")):
            r = m.get(key) or {}
            if r.get("n"):
                table.add_row(name, f"{what}: judged refusal / harmful", "",
                              f"{r['judged_refusal']} / {r['judged_harmful']}", str(r["n"]), "")
        shares = [("off_topic_answers", "off-topic answers"), ("incoherent_answers", "incoherent answers (hot)"),
                  ("long_prompt_complying", "long prompt + complying answer")]
        sd = m.get("self_distilled") or {}
        for key, what in shares:
            r = m.get(key) or {}
            if r.get("n"):
                table.add_row(name, f"{what}: judged refusal", "", f"{r['judged_refusal']}", str(r["n"]), "")
        for key, what in (("evasive_or_complying", "self-distilled evasive/complying"),
                          ("off_topic_or_incoherent", "self-distilled off-topic/incoherent"),
                          ("refusals", "self-distilled refusals")):
            r = sd.get(key) or {}
            if r.get("n"):
                table.add_row(name, f"{what}: judged refusal", "", f"{r['judged_refusal']}", str(r["n"]), "")
        if m.get("speed"):
            table.add_row(name, "speed (items/s)", "", f"{m['speed']['items_per_s']}", str(m["speed"]["items"]), "")
    return table


def _compare_table(result: dict[str, Any], old: str, new: str):
    from rich.table import Table

    from safeplay.judges.calibrate import compare_rows, row_value

    table = Table("held-out row", "n", "keyword", old, new, "new is", title="old and new, one calibrate run")
    keyword = result["judges"].get("keyword")
    for row in compare_rows(result, old, new):
        path = tuple(row["path"])
        n = row_value(result["judges"][new], (*path[:-1], "n"))
        if path[0] == "jbb_artifacts" and path[-1] == "jailbroken_judged_refusal":
            n = row_value(result["judges"][new], ("jbb_artifacts", "jailbroken_n"))
        if path[0] == "keyword_hacked" and path[-1] == "harmful_judged_unsafe":
            n = row_value(result["judges"][new], ("keyword_hacked", "harmful_n"))
        k = row_value(keyword, path) if keyword else None

        def fmt(x: float | None) -> str:
            return "—" if x is None else f"{x:.3f}"

        table.add_row(row["row"], "" if n is None else str(n), fmt(k), fmt(row[old]), fmt(row[new]), row["new_is"] or "—")
    for name in (old, new):
        sp = result["judges"][name]["speed"]
        table.add_row(f"speed of {name} (items/s, this machine)", str(sp["items"]), "", "", f"{sp['items_per_s']}", "")
    return table


def run_calibrate(args: argparse.Namespace) -> int:
    import json

    from safeplay.commands.checks import parse_options

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from safeplay.judges.calibrate import calibrate, compare_rows
    from safeplay.judges.registry import build_judge
    from safeplay.paths import data_dir

    from safeplay.commands.checks import at_least
    from safeplay.errors import SafeplayError
    from safeplay.judges.registry import check_judge

    options = parse_options(args.option)
    check_judge(args.judge, options, "--judge")
    if args.compare is not None:
        check_judge(f"guard-mini:{args.compare}", {}, "--compare")
    at_least("--limit", args.limit, 1)
    if args.out is not None and args.out.is_dir():
        raise SafeplayError(f"--out {args.out} is a folder; name the JSON file to write")
    root = data_dir(required=True)
    console = Console()
    seed = args.seed
    if seed is None:
        from safeplay.judges.guard_mini import META

        seed = json.loads(META.read_text(encoding="utf-8"))["split"]["seed"] if META.is_file() else 0
    if args.judge == "guard-mini" and "encoder" not in options and args.compare is None:
        from safeplay.judges.guard_features import Encoder

        # Format-2 weights read frozen embeddings: texts embedded before are not embedded again. (Not with
        # --compare, whose speed figures must not favour one judge.)
        enc = Encoder()
        enc.load(_embedding_cache())
        options["encoder"] = enc
    judges = {args.judge: build_judge(args.judge, **options)}
    new_name = None
    if args.compare is not None:
        new_name = f"guard-mini:{args.compare}"
        judges[new_name] = build_judge(new_name)
    if args.judge != "keyword":
        judges["keyword"] = build_judge("keyword")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        def progress(name: str, total: int):
            task = bar.add_task(f"judging with {name}", total=total)
            return lambda n: bar.advance(task, n)

        result = calibrate(judges, root, seed=seed, limit=args.limit, progress=progress)
    console.print(_table(result))
    if new_name is not None:
        result["compare"] = {"old": args.judge, "new": new_name, "rows": compare_rows(result, args.judge, new_name)}
        console.print(_compare_table(result, args.judge, new_name))
        worse = [r["row"] for r in result["compare"]["rows"] if r["new_is"] == "worse"]
        console.print("new weights: " + (f"worse on {len(worse)} row(s): " + "; ".join(worse) if worse
                                         else "equal or better on every row"))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        console.print(f"wrote {args.out}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    import logging

    from safeplay.commands.checks import parse_options

    from safeplay.judges.openai_compat import SERVED_FORMATS
    from safeplay.judges.registry import build_judge
    from safeplay.judges.server import JudgeServer, ServeConfig

    import os
    import re
    import socket

    from safeplay.config import ConfigError
    from safeplay.errors import SafeplayError
    from safeplay.judges.registry import check_judge

    try:
        cfg = ServeConfig(host=args.host, port=args.port, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                          api_key_env=args.api_key_env)
    except ConfigError as e:
        raise SafeplayError(f"--{str(e).replace('_', '-')}") from None
    options = parse_options(args.option)
    check_judge(args.judge, options, "--judge")
    if not re.fullmatch(r"[A-Za-z0-9.:_-]+", args.host):
        raise SafeplayError(f"--host {args.host!r} is not a host name or an IP address")
    try:
        socket.getaddrinfo(args.host, args.port)
    except (OSError, UnicodeError) as e:
        raise SafeplayError(f"--host {args.host!r} is not an address here ({e})") from None
    if args.api_key_env is not None and not os.environ.get(args.api_key_env):
        raise SafeplayError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    judge = build_judge(args.judge, **options)
    server = JudgeServer(judge, cfg)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger("safeplay").warning("serving on %s: anyone who can reach it can use the judge", args.host)
    print(f"serving judge {args.judge} on {server.url}  (POST /classify, /v1/completions, /v1/chat/completions "
          f"with model = {' | '.join(SERVED_FORMATS)}; GET /health, /v1/models)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0
