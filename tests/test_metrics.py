"""Metrics against values computed by hand from the official definitions."""

from __future__ import annotations

import math

import pytest

from builder.metrics import load_metric
from builder.metrics.functions import (
    accuracy_macro_f1,
    entities,
    entity_f1,
    normalize_answer,
    perplexity,
    rank,
    similarity_correlation,
    squad_v2,
    token_f1,
)


def test_squad_normalization_is_the_official_one() -> None:
    assert normalize_answer("The  Eiffel-Tower, in Paris!") == "eiffeltower in paris"
    assert normalize_answer("an apple and a pear") == "apple and pear"
    assert normalize_answer("Theatre") == "theatre"  # articles only as whole words


def test_squad_v2_exact_f1_and_breakdowns() -> None:
    predictions = ["Denver Broncos", "the Broncos", "", "Paris", ""]
    golds = [
        ["Denver Broncos", "Broncos"],  # exact
        ["Denver Broncos"],  # f1: common {broncos}: p=1/1, r=1/2 -> 2/3
        [],  # no answer, predicted none -> 1, 1
        [],  # no answer, predicted "Paris" -> 0, 0
        ["1789"],  # has answer, predicted none -> 0, 0
    ]
    out = squad_v2(predictions, golds)
    assert out["total"] == 5 and out["HasAns_total"] == 3 and out["NoAns_total"] == 2
    assert out["exact"] == pytest.approx(100 * 2 / 5)
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0 + 0) / 5)
    assert out["HasAns_exact"] == pytest.approx(100 / 3)
    assert out["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert out["NoAns_exact"] == pytest.approx(50.0) and out["NoAns_f1"] == pytest.approx(50.0)
    assert token_f1("", "") == 1.0 and token_f1("a", "") == 1.0  # "a" normalizes to nothing
    assert token_f1("the cat", "a dog") == 0.0  # both answered, nothing in common
    assert token_f1("Denver Broncos", "Denver Broncos team") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))


def test_squad_v2_of_nothing_and_of_unequal_lengths() -> None:
    assert squad_v2([], []) == {"exact": 0.0, "f1": 0.0, "total": 0.0}
    with pytest.raises(ValueError):
        squad_v2(["Paris", "Rome"], [["Paris"]])


def test_accuracy_and_macro_f1() -> None:
    out = accuracy_macro_f1(["pos", "pos", "neg", "neg", "pos"], ["pos", "neg", "neg", "neg", "neu"])
    # pos: tp1 fp2 fn0 -> 2/4; neg: tp2 fp0 fn1 -> 4/5; neu: tp0 -> 0
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert out["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_macro_f1_counts_each_label_against_every_other() -> None:
    """Three labels whose order would matter to a comparison by order (a < b < c), a label with three hits."""
    refs = ["a", "a", "a", "a", "b", "b", "c", "c"]
    preds = ["a", "a", "a", "b", "a", "c", "c", "b"]
    out = accuracy_macro_f1(preds, refs)
    # a: tp 3, fp 1, fn 1 -> 6/8; b: tp 0 -> 0; c: tp 1, fp 1, fn 1 -> 2/4
    assert out["accuracy"] == pytest.approx(4 / 8)
    assert out["macro_f1"] == pytest.approx((6 / 8 + 0.0 + 2 / 4) / 3)
    assert accuracy_macro_f1([], []) == {"accuracy": 0.0, "macro_f1": 0.0}


def test_accuracy_compares_labels_by_value() -> None:
    """Labels equal in value but distinct objects (read from different files) are the same label; predictions
    and references of different lengths are refused, not silently cut."""

    def label(text: str) -> str:  # a new string object each call
        return "".join(list(text))

    out = accuracy_macro_f1([label("pos"), label("pos")], ["neg", label("pos")])
    assert out["accuracy"] == 0.5  # pos: tp 1, fp 1 -> F1 2/3; neg: never predicted -> 0
    assert out["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)
    # three predictions of pos, each its own object, one right: fp counts the two that are equal but not identical
    out = accuracy_macro_f1([label("pos"), label("pos"), label("pos")], [label("pos"), "neg", "neg"])
    assert out["macro_f1"] == pytest.approx((2 / 4 + 0) / 2)
    with pytest.raises(ValueError):
        accuracy_macro_f1(["pos", "neg"], ["pos"])


def test_entities_follow_seqeval_lenient_rules() -> None:
    assert entities([["B-PER", "I-PER", "O", "B-LOC"]]) == {("PER", 0, 1), ("LOC", 3, 3)}
    assert entities([["I-PER", "I-PER", "O"]]) == {("PER", 0, 1)}  # I- after O starts an entity
    assert entities([["B-PER", "I-LOC"]]) == {("PER", 0, 0), ("LOC", 1, 1)}  # type change splits
    assert entities([["B-PER"], ["I-PER"]]) == {("PER", 0, 0), ("PER", 2, 2)}  # sentences never join
    assert entities([["B-LOC", "I-PER"]]) == {("LOC", 0, 0), ("PER", 1, 1)}  # either order of the types
    assert entities([["I-LOC", "I-PER", "I-LOC"]]) == {("LOC", 0, 0), ("PER", 1, 1), ("LOC", 2, 2)}
    # IOBES: an I- or E- after an E- or S- of the same type starts a new entity
    assert entities([["B-PER", "E-PER", "I-PER", "E-PER"]]) == {("PER", 0, 1), ("PER", 2, 3)}
    assert entities([["S-PER", "E-PER"]]) == {("PER", 0, 0), ("PER", 1, 1)}


def test_entity_f1() -> None:
    refs = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    preds = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-PER"]]
    out = entity_f1(preds, refs)
    # true {PER, LOC, ORG}; predicted {PER, ORG(3), ORG, PER(1)}; correct {PER, ORG} -> p=2/4, r=2/3
    assert out["precision"] == pytest.approx(0.5) and out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert out["LOC_f1"] == 0.0 and out["ORG_f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert out["PER_f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)  # two predicted, one right
    assert {k for k in out if k.endswith("_f1")} == {"PER_f1", "LOC_f1", "ORG_f1"}
    out = entity_f1([["B-PER", "O", "B-LOC"]], [["B-PER", "O", "B-ORG"]])  # PER all right, the others not
    assert (out["PER_f1"], out["LOC_f1"], out["ORG_f1"]) == (1.0, 0.0, 0.0)
    # two entities of a type on each side: types compared by value (each tag's type is its own string object)
    out = entity_f1([["B-PER", "O", "B-PER", "O"]], [["B-PER", "O", "B-PER", "B-LOC"]])
    assert (out["PER_f1"], out["LOC_f1"]) == (1.0, 0.0)


def test_no_predicted_entities_has_zero_precision() -> None:
    out = entity_f1([["O", "O"]], [["B-PER", "O"]])
    assert (out["precision"], out["recall"], out["f1"]) == (0.0, 0.0, 0.0)
    out = entity_f1([["B-PER", "O"]], [["O", "O"]])  # nothing to find: recall 0, as seqeval says
    assert (out["precision"], out["recall"], out["f1"]) == (0.0, 0.0, 0.0)


def test_perplexity_is_the_exponent_of_the_mean_token_nll() -> None:
    out = perplexity([3.0, 2.5], [3, 1])  # 5.5 nats over 4 tokens (not 5.5 % 4 or 5.5 - 4)
    assert out["nll_per_token"] == pytest.approx(1.375) and out["tokens"] == 4.0
    assert out["perplexity"] == pytest.approx(math.exp(1.375))
    empty = perplexity([], [])
    assert math.isnan(empty["perplexity"]) and math.isnan(empty["nll_per_token"]) and empty["tokens"] == 0.0


def test_ranks_and_correlations() -> None:
    assert list(rank([10, 20, 20, 5])) == [2, 3.5, 3.5, 1]
    assert list(rank([7, 7, 7])) == [2, 2, 2]  # all tied
    assert list(rank([3, 1, 2])) == [3, 1, 2]
    out = similarity_correlation([0.1, 0.4, 0.35, 0.8], [1.0, 3.0, 2.0, 5.0])
    assert out["spearman"] == pytest.approx(1.0)
    x, y = [0.1, 0.4, 0.35, 0.8], [1.0, 3.0, 2.0, 5.0]
    mx, my = sum(x) / 4, sum(y) / 4
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    r = cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))
    assert out["pearson"] == pytest.approx(r)
    assert similarity_correlation([3, 2, 1], [1, 2, 3])["spearman"] == pytest.approx(-1.0)
    # a constant side has no correlation: 0, not a division by zero
    assert similarity_correlation([0.5, 0.5, 0.5], [1.0, 2.0, 3.0]) == {"spearman": 0.0, "pearson": 0.0}


def test_metrics_load_offline_as_evaluate_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    out = load_metric("squad_v2").compute(
        predictions=["Denver Broncos", ""], references=[["Broncos", "Denver Broncos"], []]
    )
    assert out["exact"] == 100.0
    assert (
        load_metric("classification").compute(predictions=["a", "b"], references=["a", "a"])["accuracy"]
        == 0.5
    )
    f1 = load_metric("entity_f1").compute(predictions=[["B-PER", "O"]], references=[["B-PER", "O"]])["f1"]
    assert f1 == 1.0
    sim = load_metric("similarity").compute(predictions=[0.1, 0.9], references=[1.0, 4.0])
    assert sim["spearman"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------- generated text vs references


def test_rouge_against_hand_counts_and_rouge_scores_readme() -> None:
    from builder.metrics.text_overlap import rouge, rouge_scores

    # 6 tokens each, 5 shared unigrams, 3 of 5 bigrams, a common subsequence of 5
    scores = rouge_scores("the cat sat on the mat", "The cat is on the mat!")
    assert scores["rouge1"] == pytest.approx(5 / 6) and scores["rouge2"] == pytest.approx(0.6)
    assert scores["rougeL"] == pytest.approx(5 / 6) and scores["rougeLsum"] == pytest.approx(5 / 6)
    # rouge_score's README: P 0.75, R 0.667 for rouge1; P 0.625, R 0.556 for rougeL
    readme = rouge_scores(
        "The quick brown dog jumps on the log.", "The quick brown fox jumps over the lazy dog"
    )
    assert readme["rouge1"] == pytest.approx(2 * 0.75 * (6 / 9) / (0.75 + 6 / 9))
    assert readme["rougeL"] == pytest.approx(2 * 0.625 * (5 / 9) / (0.625 + 5 / 9))
    # Lsum joins each reference sentence's LCS with every predicted sentence
    lsum = rouge_scores("the cat sat\non the mat", "on the mat\nthe cat sat")
    assert lsum["rougeLsum"] == pytest.approx(1.0) and lsum["rougeL"] < 1.0
    assert rouge_scores("", "anything")["rouge1"] == 0.0
    mean = rouge(["the cat", "a dog"], ["the cat", "the cat"])
    assert mean["rouge1"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        rouge(["a", "b"], ["a"])


def test_bleu_and_chrf_against_hand_counts_and_sacrebleu_readme() -> None:
    from builder.metrics.text_overlap import bleu, chrf, tokenize_13a

    # apostrophes and hyphens stay (13a splits neither), numbers keep their point
    assert tokenize_13a("It wasn't 3.5 km-long, was it?") == "It wasn't 3.5 km-long , was it ?"
    # 1-4 gram precisions 6/7, 4/6, 2/5, 1/4, no brevity penalty
    one = bleu(["the cat sat on the mat."], ["the cat is on the mat."])
    assert one["bleu"] == pytest.approx(100 * (6 / 7 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25)
    # sacrebleu's README: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 hyp_len = 17 ref_len = 18); chrF2 = 59.73
    system = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    references = [
        ("The dog bit the man.", "The dog had bit the man."),
        ("It was not unexpected.", "No one was surprised."),
        ("The man bit him first.", "The man had bitten the dog."),
    ]
    result = bleu(system, references)
    assert round(result["bleu"], 2) == 48.53 and (result["hyp_len"], result["ref_len"]) == (17, 18)
    assert [round(p, 1) for p in result["precisions"]] == [82.4, 50.0, 45.5, 37.5]
    assert round(chrf(system, references), 2) == 59.73
    assert bleu(["x y z"], ["a b c"])["bleu"] == 0.0 and chrf(["abc"], ["abc"]) == pytest.approx(100.0)
    short = bleu(["the cat sat on the"], ["the cat sat on the mat"])  # every n-gram right, one token short
    assert short["bleu"] == pytest.approx(100 * math.exp(1 - 6 / 5))
