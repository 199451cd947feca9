"""Greedy answers from exported folders with plain transformers (+ peft for an adapter), safeplay not importable.

Run as a script in a fresh process::

    python plain_hf_answers.py MAX_NEW_TOKENS FORMAT=FOLDER [FORMAT=FOLDER ...] -- PROMPT [PROMPT ...]

(FORMAT: merged or adapter). Prints ``{FOLDER: [answer, ...]}`` as JSON. Importing safeplay fails here, so the
answers show that an exported folder stands alone. Weights are loaded in float32 and decoding is greedy: the same
arithmetic ``safeplay chat --dtype float32`` does, so the answers must be identical, not merely close.
"""

from __future__ import annotations

import importlib.abc
import json
import sys


class _NoSafeplay(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "safeplay" or name.startswith("safeplay."):
            raise ImportError(f"{name} must not be needed to load an exported model")
        return None


def answers(fmt: str, folder: str, prompts: list[str], max_new_tokens: int) -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    if fmt == "adapter":
        from peft import AutoPeftModelForCausalLM  # reads the base from adapter_config.json

        model = AutoPeftModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    out = []
    for prompt in prompts:
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        gen = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
        out.append(tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return out


def main() -> None:
    sys.meta_path.insert(0, _NoSafeplay())
    args = sys.argv[1:]
    split = args.index("--")
    max_new_tokens, targets, prompts = int(args[0]), args[1:split], args[split + 1:]
    import torch

    torch.set_num_threads(1)
    result = {}
    for target in targets:
        fmt, folder = target.split("=", 1)
        result[folder] = answers(fmt, folder, prompts, max_new_tokens)
    assert not any(m == "safeplay" or m.startswith("safeplay.") for m in sys.modules)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
