"""Separation of the confident and unconfident halves in representation space, beyond topic."""

import numpy as np
import pytest

from sftmix.analysis.separation import split_separation


def _clusters(seed=0, n_per=40, n_clusters=4, dim=8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 8, size=(n_clusters, dim))
    cluster = np.repeat(np.arange(n_clusters), n_per)
    return centres[cluster] + rng.normal(0, 1, size=(len(cluster), dim)), cluster, rng


def test_halves_split_by_topic_alone_show_no_separation_beyond_topic():
    x, cluster, _ = _clusters()
    confident = cluster < 2                        # whole topics are confident: topic explains it all
    out = split_separation(x, confident, k=8, n_topics=4, n_perm=100)
    assert out["observed"] > 0.95 and abs(out["random_mean"] - 0.5) < 0.05
    assert abs(out["beyond_topic"]) < 0.02 and out["p_beyond_topic"] > 0.05


def test_halves_apart_inside_each_topic_separate_beyond_topic():
    x, cluster, rng = _clusters()
    confident = rng.random(len(x)) < 0.5           # half of every topic, not whole topics ...
    x[confident, 1:] += 1.5                        # ... and the halves drift apart within each topic
    out = split_separation(x, confident, k=8, n_topics=4, n_perm=100)
    assert out["beyond_topic"] > 0.1 and out["p_beyond_topic"] < 0.05


def test_random_halves_do_not_separate():
    x, _, rng = _clusters(seed=1)
    out = split_separation(x, rng.random(len(x)) < 0.5, k=8, n_topics=4, n_perm=50)
    assert abs(out["observed"] - 0.5) < 0.08 and out["p_beyond_topic"] > 0.01


def test_bad_shapes_are_explained():
    with pytest.raises(ValueError, match="one label per row"):
        split_separation(np.zeros((10, 3)), np.zeros(9, dtype=bool))
