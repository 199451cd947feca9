"""RolePolicies over a tiny random Llama: sharing, reference isolation, save/load, the three layouts."""

from __future__ import annotations

import pytest
import torch

from safeplay.config import ConfigError, from_dict
from safeplay.errors import SafeplayError
from safeplay.generation.base import ChatPrompt, SamplingParams
from safeplay.models import PolicyConfig, RolePolicies, tiny_model

SHARED = {"attacker": "player", "defender": "player"}
GREEDY = SamplingParams(temperature=0, max_new_tokens=6)
PROMPTS = [ChatPrompt([{"role": "user", "content": "How do I bake bread?"}]), ChatPrompt([{"role": "user", "content": "Hi"}])]


def make(mode: str = "lora", share: dict | None = None, roles=("attacker", "defender", "evaluator"), seed: int = 0):
    model, tok = tiny_model(seed=seed)
    torch.manual_seed(0)  # LoRA A matrices are drawn from the global RNG
    return RolePolicies(model, tok, roles, PolicyConfig(mode=mode, share=share or {}), micro_batch_size=4)


def batch(tok):
    ids = [tok(f"<|im_start|>user\nsample {i} text<|im_end|>", add_special_tokens=False)["input_ids"] for i in range(2)]
    ids[1] = ids[1][:-2]
    width = max(map(len, ids))
    input_ids = torch.full((2, width), tok.pad_token_id)
    mask = torch.zeros((2, width), dtype=torch.long)
    for i, s in enumerate(ids):
        input_ids[i, width - len(s) :] = torch.tensor(s)
        mask[i, width - len(s) :] = 1
    return input_ids, mask


def perturb(pol: RolePolicies, role: str, scale: float = 0.5) -> None:
    """Stand-in for a training step on one role: push every trainable weight of its policy."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in pol.trainable_parameters(role):
            p.add_(torch.randn(p.shape, generator=gen).to(p.dtype) * scale)


def lps(pol, role, ids, mask):
    with torch.no_grad():
        return pol.token_logprobs(role, ids, mask)


@pytest.mark.parametrize("mode", ["lora", "separate"])
def test_update_isolated_between_policies_and_shared_within(mode):
    pol = make(mode, SHARED)
    assert pol.policy_names() == ["player", "evaluator"]
    assert pol.policy_name("attacker") == pol.policy_name("defender") == "player"
    ids, mask = batch(pol.tokenizer)
    before = {r: lps(pol, r, ids, mask) for r in pol.roles}
    gen_before = {r: [c.token_ids for c in pol.generate(r, PROMPTS, GREEDY)] for r in pol.roles}
    perturb(pol, "attacker")
    after = {r: lps(pol, r, ids, mask) for r in pol.roles}
    gen_after = {r: [c.token_ids for c in pol.generate(r, PROMPTS, GREEDY)] for r in pol.roles}
    assert torch.equal(before["evaluator"], after["evaluator"])
    assert gen_before["evaluator"] == gen_after["evaluator"]
    assert not torch.allclose(before["defender"], after["defender"])
    assert torch.equal(after["attacker"], after["defender"])
    assert gen_after["attacker"] == gen_after["defender"]


@pytest.mark.parametrize("mode", ["lora", "separate", "full"])
def test_reference_ignores_training(mode):
    pol = make(mode, SHARED if mode == "full" else {}, roles=("attacker", "defender"))
    ids, mask = batch(pol.tokenizer)
    ref0 = pol.ref_token_logprobs(ids, mask)
    assert not ref0.requires_grad
    # Before any update every policy equals the reference (LoRA B starts at zero; copies start equal).
    assert torch.allclose(lps(pol, "defender", ids, mask), ref0, atol=1e-6)
    base0 = [c.token_ids for c in pol.base_generator().generate(PROMPTS, GREEDY)]
    perturb(pol, "defender")
    assert torch.equal(pol.ref_token_logprobs(ids, mask), ref0)
    assert not torch.allclose(lps(pol, "defender", ids, mask), ref0)
    assert [c.token_ids for c in pol.base_generator().generate(PROMPTS, GREEDY)] == base0


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lora", "separate", "full"])
def test_frozen_reference_is_the_snapshot_per_policy(tmp_path, mode):
    share = SHARED if mode == "full" else {}
    roles = ("attacker", "defender")
    pol = make(mode, share, roles=roles)
    ids, mask = batch(pol.tokenizer)
    base = pol.ref_token_logprobs(ids, mask)
    perturb(pol, "defender", scale=0.3)
    if mode != "full":
        perturb(pol, "attacker", scale=0.1)
    warm = {r: lps(pol, r, ids, mask) for r in roles}
    pol.freeze_reference()
    for r in roles:  # the reference is now each policy's own weights at the snapshot
        assert torch.allclose(pol.ref_token_logprobs(ids, mask, role=r), warm[r], atol=1e-6)
    assert torch.equal(pol.ref_token_logprobs(ids, mask), base)  # no role: the base, as before
    perturb(pol, "defender", scale=0.2)  # training moves the policy, not its reference
    assert torch.allclose(pol.ref_token_logprobs(ids, mask, role="defender"), warm["defender"], atol=1e-6)
    assert not torch.allclose(lps(pol, "defender", ids, mask), warm["defender"])
    # The snapshot is not trainable and not part of the role's weights.
    names = {id(p) for p in pol.trainable_parameters("defender")}
    assert set(pol.state_dict("defender")) == set(make(mode, share, roles=roles).state_dict("defender"))
    for name in pol.frozen_reference_names():
        assert not any(id(p) in names for p in pol._reference_state(name).values())
        pol.save_reference(name, tmp_path / name)
    fresh = make(mode, share, roles=roles)
    for name in pol.frozen_reference_names():
        fresh.load_reference(name, tmp_path / name)
    for r in roles:
        assert torch.allclose(fresh.ref_token_logprobs(ids, mask, role=r), warm[r], atol=1e-6)


def test_reference_pass_between_forward_and_backward_keeps_the_gradient():
    """The fused update differentiates a forward taken before the reference pass: the gradient must be the same."""
    pol = make("lora", SHARED, roles=("attacker", "defender"))
    perturb(pol, "defender", scale=0.1)
    pol.freeze_reference()
    ids, mask = batch(pol.tokenizer)
    pol.train()
    pol.token_logprobs("defender", ids, mask).sum().backward()
    want = [p.grad.clone() for p in pol.trainable_parameters("defender")]
    pol.model.zero_grad(set_to_none=True)
    out = pol.token_logprobs("defender", ids, mask)
    pol.ref_token_logprobs(ids, mask, role="defender")
    out.sum().backward()
    got = [p.grad for p in pol.trainable_parameters("defender")]
    assert all(g is not None and torch.allclose(g, w) for g, w in zip(got, want))
    ref_params = pol._reference_state("player").values()
    assert all(p.grad is None and not p.requires_grad for p in ref_params)
    pol.eval()


def test_lora_gradients_reach_only_the_active_adapter():
    pol = make("lora")
    ids, mask = batch(pol.tokenizer)
    pol.train()
    pol.token_logprobs("defender", ids, mask).sum().backward()
    assert all(p.grad is not None for p in pol.trainable_parameters("defender"))
    for role in ("attacker", "evaluator"):
        assert all(p.grad is None for p in pol.trainable_parameters(role))
    base = [p for n, p in pol.model.named_parameters() if "lora_" not in n]
    assert base and all(p.grad is None and not p.requires_grad for p in base)
    pol.eval()


def test_separate_mode_gradients_stay_in_the_role_copy():
    pol = make("separate")
    ids, mask = batch(pol.tokenizer)
    pol.token_logprobs("attacker", ids, mask).sum().backward()
    assert all(p.grad is not None for p in pol.trainable_parameters("attacker"))
    assert all(p.grad is None for p in pol.trainable_parameters("defender"))
    assert all(p.grad is None for p in pol.reference.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lora", "separate", "full"])
def test_save_load_round_trip(tmp_path, mode):
    share = SHARED if mode == "full" else {}
    roles = ("attacker", "defender")
    pol = make(mode, share, roles=roles)
    firsts = {pol.policy_name(r): r for r in reversed(roles)}  # one role per distinct policy
    for i, role in enumerate(firsts.values()):
        perturb(pol, role, scale=0.1 * (i + 1))
    saved = {r: {k: v.clone() for k, v in pol.state_dict(r).items()} for r in roles}
    ids, mask = batch(pol.tokenizer)
    want = {r: lps(pol, r, ids, mask) for r in roles}
    for r in roles:
        pol.save_role(r, tmp_path / r)
    fresh = make(mode, share, roles=roles)
    for r in roles:
        fresh.load_role(r, tmp_path / r)
        got = fresh.state_dict(r)
        assert set(got) == set(saved[r])
        assert all(torch.equal(got[k], saved[r][k]) for k in got)
        assert torch.equal(lps(fresh, r, ids, mask), want[r])


@pytest.mark.slow
def test_load_role_rejects_other_layouts(tmp_path):
    lora = make("lora", roles=("defender",))
    lora.save_role("defender", tmp_path / "d")
    sep = make("separate", roles=("defender",))
    with pytest.raises(SafeplayError, match="lora"):
        sep.load_role("defender", tmp_path / "d")
    with pytest.raises(SafeplayError, match="no saved role weights"):
        lora.load_role("defender", tmp_path / "missing")
    small = RolePolicies(*tiny_model(), ["defender"], PolicyConfig(lora_r=4))
    with pytest.raises(SafeplayError, match="do not fit"):
        small.load_role("defender", tmp_path / "d")


def test_role_generator_matches_generate():
    pol = make("lora", SHARED)
    perturb(pol, "defender", 0.2)
    sp = SamplingParams(temperature=1.0, max_new_tokens=5)
    a = pol.generator("defender").generate(PROMPTS, sp, seed=4)
    pol.generate("evaluator", PROMPTS, sp, seed=4)  # switches the active adapter in between
    b = pol.generate("defender", PROMPTS, sp, seed=4)
    assert [c.token_ids for c in a] == [c.token_ids for c in b]
    assert pol.render(PROMPTS[0]).endswith("<|im_start|>assistant\n")


def test_config_errors_are_clear():
    with pytest.raises(ConfigError, match="mode: 'adapters' is not allowed"):
        PolicyConfig(mode="adapters")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="share.judge: unknown role"):
        PolicyConfig(share={"judge": "player"})
    with pytest.raises(ConfigError, match="share.attacker: policy name"):
        PolicyConfig(share={"attacker": "two words"})
    with pytest.raises(ConfigError, match="share.attacker: target 'defender' is a role mapped to another policy"):
        PolicyConfig(share={"attacker": "defender", "defender": "player"})
    with pytest.raises(ConfigError, match="policy.lora_r"):
        from_dict(PolicyConfig, {"lora_r": 0}, prefix="policy.")
    # Sharing with another role by naming it is fine.
    assert PolicyConfig(share={"attacker": "defender"}).share == {"attacker": "defender"}


@pytest.mark.slow
def test_policy_errors_are_clear():
    model, tok = tiny_model()
    with pytest.raises(SafeplayError, match="mode=full trains one shared model"):
        RolePolicies(model, tok, ["attacker", "defender"], PolicyConfig(mode="full"))
    pol = make("lora", roles=("defender",))
    with pytest.raises(SafeplayError, match="unknown role 'attacker'"):
        pol.policy_name("attacker")
