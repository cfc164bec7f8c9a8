"""Do the confident and unconfident halves sit in different regions of representation space,
beyond what the topic of a conversation explains?

The paper shows a t-SNE picture in which the two halves occupy different regions. A picture
can mislead (the projection's own clustering), and on real chats the obvious alternative
explanation is topic: some subjects are easier for a model than others, and conversations on
one subject sit together. :func:`split_separation` puts a number on both, in the embedding
space itself (after PCA), not in the 2-D projection:

* ``observed``: the mean fraction of each example's ``k`` nearest neighbours that are in its
  own half (0.5 when the halves are mixed at random, 1.0 when they are fully apart);
* ``random_mean``: the same with the half labels shuffled over all examples (~0.5);
* ``topic_mean``: the same with the labels shuffled *within topic clusters* (k-means on the
  embeddings): the agreement that topic membership alone explains;
* ``beyond_topic = observed - topic_mean`` with a permutation p-value (the share of
  within-topic shuffles that reach ``observed``).

The toy's counterpart is :func:`sftmix.analysis.projection.knn_agreement` with task families
as the known topics.
"""

from __future__ import annotations

import numpy as np

__all__ = ["split_separation"]


def _agreement(neighbours: np.ndarray, labels: np.ndarray) -> float:
    return float((labels[neighbours] == labels[:, None]).mean())


def split_separation(embeddings, confident, *, k: int = 10, n_topics: int = 8, n_perm: int = 200,
                     n_components: int = 50, seed: int = 0) -> dict:
    """How far the two halves separate in ``embeddings`` (N, D), overall and beyond topic.

    ``confident``: (N,) booleans, True for the confident half. Returns the dict described in
    the module docstring, plus ``topics`` (the cluster of each example), ``k``, ``n_topics``
    and ``n``.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(confident, dtype=bool)
    if x.ndim != 2 or len(x) != len(labels):
        raise ValueError(f"embeddings must be (N, D) with one label per row; got {x.shape} and {labels.shape}")
    n = len(x)
    if not 1 <= k < n or not 1 <= n_topics <= n // 2:
        raise ValueError(f"need 1 <= k < N and 1 <= n_topics <= N/2 (N={n}, k={k}, n_topics={n_topics})")
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    x = PCA(n_components=min(n_components, n - 1, x.shape[1]), random_state=seed).fit_transform(x)
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    topics = KMeans(n_clusters=n_topics, n_init=10, random_state=seed).fit_predict(x)
    rng = np.random.default_rng(seed)
    observed = _agreement(neighbours, labels)
    shuffled, within = [], []
    members = [np.flatnonzero(topics == t) for t in range(n_topics)]
    for _ in range(n_perm):
        shuffled.append(_agreement(neighbours, rng.permutation(labels)))
        permuted = labels.copy()
        for idx in members:
            permuted[idx] = labels[rng.permutation(idx)]
        within.append(_agreement(neighbours, permuted))
    within = np.asarray(within)
    return {"observed": observed, "random_mean": float(np.mean(shuffled)), "random_std": float(np.std(shuffled)),
            "topic_mean": float(within.mean()), "topic_std": float(within.std()),
            "beyond_topic": float(observed - within.mean()),
            "p_beyond_topic": float((np.sum(within >= observed) + 1) / (n_perm + 1)),
            "topics": topics, "k": k, "n_topics": n_topics, "n": n}
