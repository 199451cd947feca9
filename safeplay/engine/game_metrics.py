"""Per-step game statistics: outcome rates, attack success, refusal rates, ties, format, lengths, diversity."""

from __future__ import annotations

from statistics import mean
from typing import Sequence

from safeplay.game.rollout import Game


def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def game_metrics(games: Sequence[Game]) -> dict[str, float | None]:
    """Rates over judged games. ``None`` when a rate has no games to count (logged as null, not 0)."""
    judged = [g for g in games if g.verdict is not None and not g.verdict.unparseable]
    out: dict[str, float | None] = {"games": float(len(games))}
    out["unparseable_rate"] = _rate([g.verdict is None or g.verdict.unparseable for g in games])
    out["tie_rate"] = _rate([not g.verdict.complete for g in judged])
    for label in ("unsafe", "refusal", "helpful"):
        out[f"outcome/{label}"] = _rate([g.verdict.label == label for g in judged])
    harmful = [g for g in judged if g.seed_harmful and g.verdict.response_harmful is not None]
    attacked_harmful = [g for g in harmful if g.marked_for_attack]
    out["attack_success_rate"] = _rate([bool(g.verdict.response_harmful) for g in attacked_harmful])
    out["harmful_response_rate"] = _rate([bool(g.verdict.response_harmful) for g in harmful])
    # A refusal only counts when the answer is also judged harmless ("Sorry, I won't… <then complies>" is unsafe).
    safe_refusal = lambda g: bool(g.verdict.refusal) and not bool(g.verdict.response_harmful)  # noqa: E731
    h = [g for g in judged if g.seed_harmful and g.verdict.refusal is not None]
    b = [g for g in judged if not g.seed_harmful and g.verdict.refusal is not None]
    out["defender/refusal_harmful"] = _rate([safe_refusal(g) for g in h])
    out["defender/refusal_benign"] = _rate([bool(g.verdict.refusal) for g in b])
    out["defender/refusal_harmful_attacked"] = _rate([safe_refusal(g) for g in h if g.marked_for_attack])
    out["defender/refusal_harmful_verbatim"] = _rate([safe_refusal(g) for g in h if not g.marked_for_attack])
    out["judge/prompt_harmful_rate"] = _rate(
        [bool(g.verdict.prompt_harmful) for g in judged if g.verdict.prompt_harmful is not None]
    )
    out.update(text_checks(games))
    attacks = [g.attack for g in games if g.attack is not None]
    defenses = [g.defense for g in games if g.defense is not None]
    for name, turns in (("attacker", attacks), ("defender", defenses)):
        fmt = [t.format_ok for t in turns if t.format_ok is not None]
        if fmt:
            out[f"{name}/format_violation_rate"] = 1.0 - sum(fmt) / len(fmt)
        if turns:
            out[f"{name}/answer_chars"] = mean(len(t.public) for t in turns)
            out[f"{name}/tokens"] = mean(len(t.completion.token_ids) for t in turns)
            thinking = [len(t.parse.thinking) for t in turns if t.parse is not None]
            if thinking:
                out[f"{name}/thinking_chars"] = mean(thinking)
            out[f"{name}/truncated_rate"] = _rate([t.completion.finish_reason == "length" for t in turns])
    for role in ("attacker", "defender", "evaluator"):
        vals = [g.rewards[role] for g in games if g.rewards.get(role) is not None]
        if vals:
            out[f"{role}/reward_mean"] = mean(vals)
        dropped = [g for g in games if role in g.rewards and g.rewards[role] is None]
        if dropped:
            out[f"{role}/dropped"] = float(len(dropped))
    return out


def text_checks(games: Sequence[Game]) -> dict[str, float | None]:
    """Judge-independent rates (``rewards.answer_checks``): are the attacker's revisions coherent and on their
    seed's topic, does the judge's label of a revision match its seed's, do judged refusals say they refuse, do
    answers loop."""
    from safeplay.rewards.answer_checks import degenerate, has_refusal_wording, on_topic, topic_overlap

    out: dict[str, float | None] = {}
    attacked = [g for g in games if g.attack is not None]
    coherent = [not degenerate(g.attack.public) for g in attacked]
    topical = [on_topic(g.seed_text, g.attack.public) for g in attacked]
    out["attacker/coherent_rate"] = _rate(coherent)
    out["attacker/on_topic_rate"] = _rate(topical)
    out["attacker/coherent_on_topic_rate"] = _rate([c and t for c, t in zip(coherent, topical)])
    out["attacker/topic_overlap"] = mean(topic_overlap(g.seed_text, g.attack.public) for g in attacked) if attacked else None
    labelled = [g for g in attacked if g.verdict is not None and g.verdict.prompt_harmful is not None]
    out["judge/revision_label_matches_seed"] = _rate([g.verdict.prompt_harmful == g.seed_harmful for g in labelled])
    refusals = [g for g in games if g.verdict is not None and g.verdict.refusal and g.defense is not None]
    out["defender/refusal_without_wording"] = _rate([not has_refusal_wording(g.defense.public) for g in refusals])
    out["defender/degenerate_rate"] = _rate([degenerate(g.defense.public) for g in games if g.defense is not None])
    return out


def attacker_diversity(games: Sequence[Game], embedder) -> dict[str, float]:
    """Self-BLEU and SBERT diversity of this step's attacks, and seed ↔ revision faithfulness."""
    from safeplay.rewards.diversity import faithfulness_batch, sbert_diversity, self_bleu

    attacked = [g for g in games if g.attack is not None and g.attack.public.strip()]
    out: dict[str, float] = {}
    if len(attacked) >= 2:
        texts = [g.attack.public for g in attacked]
        out["attacker/self_bleu_diversity"] = 1.0 - self_bleu(texts) / 100.0
        out["attacker/sbert_diversity"] = sbert_diversity(embedder.encode(texts))
    if attacked:
        out["attacker/faithfulness"] = mean(
            faithfulness_batch([g.seed_text for g in attacked], [g.attack.public for g in attacked], embedder)
        )
    return out
