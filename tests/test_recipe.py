"""The recipe's registries (sftmix.recipe) and the two choices added through them alone:
the length-matched pairing and the last-checkpoint confidence."""

import dataclasses

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from sftmix.config import SFTMixConfig
from sftmix.dynamics import TokenSums, compute_dynamics, load_dynamics, save_dynamics, split_by_confidence
from sftmix.dynamics.table import checkpoint_frame, dataset_fingerprint, summarize_checkpoints
from sftmix.loss import mixup
from sftmix.pipeline import ablation
from sftmix.pipeline.experiment_config import ExperimentConfig
from sftmix.recipe import ALIGNMENTS, LOSS_VARIANTS, PAIRINGS, SPLIT_METRICS, SUMMARIES
from sftmix.train.sampler import pair_rows

X = -100


def labels_with_lengths(lengths, width=8):
    """(B, width) labels whose row i has lengths[i] response tokens after a 1-token prompt."""
    out = torch.full((len(lengths), width), X, dtype=torch.long)
    for i, n in enumerate(lengths):
        out[i, 1:1 + n] = 7
    return out


# ------------------------------------------------------------------------------ pairing
def test_pair_rows_of_each_paper_pairing():
    a, b = pair_rows(8, "confident_unconfident")
    assert a.tolist() == [0, 1, 2, 3] and b.tolist() == [4, 5, 6, 7]
    assert [t.tolist() for t in pair_rows(8, "random")] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [t.tolist() for t in pair_rows(8, "confident_confident")] == [[0, 1], [2, 3]]
    assert [t.tolist() for t in pair_rows(8, "unconfident_unconfident")] == [[4, 5], [6, 7]]
    with pytest.raises(ValueError, match="pairing='sideways' is not valid; choose one of confident_unconfident"):
        pair_rows(8, "sideways")


def test_length_matched_pairs_halves_in_length_order():
    # confident rows 0-3 have 5, 1, 3, 3 response tokens; unconfident rows 4-7 have 2, 6, 4, 1
    labels = labels_with_lengths([5, 1, 3, 3, 2, 6, 4, 1])
    a, b = pair_rows(8, "length_matched", labels)
    # shortest with shortest: (1 tok, 1 tok), (3, 2), (3, 4) [tie broken by row], (5, 6)
    assert a.tolist() == [1, 2, 3, 0] and b.tolist() == [7, 4, 6, 5]
    assert set(a.tolist()) == {0, 1, 2, 3} and set(b.tolist()) == {4, 5, 6, 7}  # each row once, halves kept
    # fewer tokens lost to the shorter response than the paper's fixed pairs (k, k + B/2)
    kept = mixup.count_mixup_positions(labels[a], labels[b])
    fixed = mixup.count_mixup_positions(labels[:4], labels[4:])
    assert (int(kept), int(fixed)) == (1 + 2 + 3 + 5, 2 + 1 + 3 + 1)
    with pytest.raises(ValueError, match="labels has 6 rows for a batch of 8"):
        pair_rows(8, "length_matched", labels[:6])
    with pytest.raises(ValueError, match="pass the batch's labels"):
        pair_rows(8, "length_matched")


def test_pairing_entries_say_how_the_sampler_and_batch_size_follow():
    assert PAIRINGS["random"].pooled and not PAIRINGS["length_matched"].pooled
    assert {n: PAIRINGS[n].batch_multiple for n in PAIRINGS} == {
        "confident_unconfident": 2, "random": 2, "confident_confident": 4, "unconfident_unconfident": 4,
        "length_matched": 2}
    assert PAIRINGS.names(paper=True) == ("confident_unconfident", "random", "confident_confident",
                                          "unconfident_unconfident")


# -------------------------------------------------------------------- loss and alignment
def test_loss_variants_combine_literal_losses():
    ntp, mix = torch.tensor(2.0), torch.tensor(6.0)
    assert {n: float(LOSS_VARIANTS[n].combine(ntp, mix, 0.25)) for n in LOSS_VARIANTS} == {
        "ntp_plus_mixup": 3.5, "equal": 4.0, "mixup_only": 6.0}


def test_every_registered_alignment_has_its_kernels():
    assert set(mixup._KERNELS) == set(ALIGNMENTS)
    labels = labels_with_lengths([3, 2])
    for name in ALIGNMENTS:
        aligned = mixup.align_pairs(labels[:1], labels[1:], name)
        assert len(aligned.pair) == int(mixup.count_mixup_positions(labels[:1], labels[1:], name))


def test_config_validation_and_help_come_from_the_registries(tmp_path):
    fields = {f.name: f for f in dataclasses.fields(SFTMixConfig)}
    for name, registry in (("pairing", PAIRINGS), ("loss_variant", LOSS_VARIANTS), ("mixup_alignment", ALIGNMENTS)):
        assert fields[name].default == registry.names()[0]
        assert all(f"'{choice}'" in fields[name].metadata["help"] for choice in registry)
    assert SFTMixConfig(output_dir=str(tmp_path), pairing="length_matched").pairing == "length_matched"
    with pytest.raises(ValueError, match="loss_variant='ntp_only' is not valid; choose one of ntp_plus_mixup"):
        SFTMixConfig(output_dir=str(tmp_path), loss_variant="ntp_only")


# ------------------------------------------------------------------ dynamics summaries
def test_last_checkpoint_confidence_on_literal_perplexities():
    ppl = np.array([[2.0, 4.0, 6.0], [8.0, 3.0, np.nan], [np.nan, np.nan, np.nan]])
    s = summarize_checkpoints(ppl, 1 / ppl, np.zeros_like(ppl))
    np.testing.assert_array_equal(s["confidence_last"][:2], [-6.0, -3.0])  # last checkpoint with a value
    assert np.isnan(s["confidence_last"][2])
    assert list(s) == list(SUMMARIES)
    assert SPLIT_METRICS == ("confidence", "confidence_prob", "correctness", "confidence_last")


def test_split_by_last_checkpoint_differs_from_the_mean():
    # a: learnt late (mean ppl 5.5, last 1); b: steady (mean 3, last 3); c, d: clear cases
    table = pd.DataFrame({"example_id": list("abcd"), **{f"ppl_{c}": v for c, v in
                          enumerate(([10.0, 3.0, 1.2, 20.0], [1.0, 3.0, 1.1, 20.0]))}})
    ppl = table[["ppl_0", "ppl_1"]].to_numpy()
    table = table.assign(**summarize_checkpoints(ppl, 1 / ppl, np.zeros_like(ppl)))
    assert split_by_confidence(table, 0.5, "confidence")["confident"] == ["c", "b"]
    by_last = split_by_confidence(table, 0.5, "confidence_last")
    assert by_last["confident"] == ["a", "c"] and by_last["threshold"] == -1.1
    with pytest.raises(ValueError, match="variability"):
        split_by_confidence(table, 0.5, "variability")  # a summary without a direction cannot split


def test_a_version_1_table_is_read_with_the_new_summary(tmp_path):
    ids = ["a", "b"]
    frames = [checkpoint_frame(ids, np.log([2.0, 4.0]), [0.5, 0.25], [1, 0], [1, 1], name=f"c{c}", step=c,
                               fingerprint=dataset_fingerprint(ids), source="scoring") for c in range(2)]
    frames[1]["ppl"] = [3.0, 1.5]
    table = compute_dynamics(frames)
    path = save_dynamics(table.drop(columns="confidence_last"), tmp_path / "dynamics.parquet",
                         fingerprint=dataset_fingerprint(ids), model_name="m", checkpoints=[0, 1])
    written = pq.read_table(path)
    meta = written.schema.metadata[b"sftmix"].replace(b'"format_version": "2"', b'"format_version": "1"')
    pq.write_table(written.replace_schema_metadata({**written.schema.metadata, b"sftmix": meta}), path)
    back = load_dynamics(path)
    assert back.attrs["format_version"] == "1"
    np.testing.assert_array_equal(back["confidence_last"], [-3.0, -1.5])


# ----------------------------------------------------------------- named token sums
def test_token_sums_by_name():
    sums = TokenSums.full(3)
    sums.add_at(np.array([0, 2, 0]), TokenSums(np.array([1.0, 2.0, 3.0]), np.ones(3), np.zeros(3), np.ones(3)))
    assert sums.nll_sum.tolist() == [4.0, 0.0, 2.0] and sums.n_tokens.tolist() == [2.0, 0.0, 1.0]
    assert list(sums.as_dict()) == ["nll_sum", "prob_sum", "correct_sum", "n_tokens"]
    again = TokenSums.from_stacked(sums.stacked())
    assert again.take(np.array([2])).nll_sum.tolist() == [2.0]
    with pytest.raises(ValueError, match=r"expected a \(4, N\) array"):
        TokenSums.from_stacked(np.zeros((3, 2)))


# ------------------------------------------------------------- from YAML and the ablation
def test_new_choices_from_yaml_and_in_the_ablation(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("recipe:\n  split_metric: confidence_last\ntraining:\n  pairing: length_matched\n")
    config = ExperimentConfig.from_yaml(path)
    assert config.recipe_args().split_metric == "confidence_last" and config.training["pairing"] == "length_matched"
    with pytest.raises(ValueError, match="split_metric='mean'"):
        ExperimentConfig(recipe={"split_metric": "mean"})
    assert ablation.parse_values("pairing", "length_matched") == ["length_matched"]
    assert ablation.parse_values("split_metric", "confidence_last,correctness") == ["confidence_last", "correctness"]
    with pytest.raises(ValueError, match="unknown value"):
        ablation.parse_values("split_metric", ["variability"])
    # the default sweep (sftmix ablate without --param) stays the paper's
    assert "length_matched" not in ablation.DEFAULT_SWEEP["pairing"] and "split_metric" not in ablation.DEFAULT_SWEEP
