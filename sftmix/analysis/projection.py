"""Two-dimensional views of the representation space, and a number for what they show.

The paper's claim is that confident and unconfident examples sit in different regions
of a model's representation space. This module projects pooled hidden states to 2-D
(PCA pre-reduction, then UMAP or t-SNE, the paper's choice; or PCA alone as a fast fallback) and measures how
strongly a per-example value such as confidence is clustered in a projection
(:func:`knn_agreement`), so a notebook can state the claim as a number, not only a
picture.

UMAP is slow to import (~10 s) and compiles with numba on its first fit (~80 s), so it
is imported only inside :func:`project_umap`, numba's cache goes to a persistent folder,
and projections can be cached on disk keyed by the embeddings and parameters.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from importlib import metadata
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..io import atomic_write
from ..recipe import PROJECTIONS

__all__ = ["PROJECTORS", "knn_agreement", "pca_reduce", "project", "project_pca", "project_tsne", "project_umap"]

_CACHE_FORMAT = 1  # bump when the cached projection's meaning changes


def _as_matrix(X, name: str = "embeddings") -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array, got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}")
    return X


def _randomized_basis(Xc: np.ndarray, k: int, rng: np.random.Generator,
                      oversample: int = 10, power_iters: int = 4) -> np.ndarray:
    # Halko, Martinsson & Tropp (2011): an orthonormal basis Q of Xc's top-k range.
    # Much cheaper than a full SVD when k << min(N, D) (e.g. 50 of 4096 dimensions).
    omega = rng.standard_normal((Xc.shape[1], k + oversample)).astype(Xc.dtype)
    Q, _ = np.linalg.qr(Xc @ omega)
    for _ in range(power_iters):
        Q, _ = np.linalg.qr(Xc.T @ Q)
        Q, _ = np.linalg.qr(Xc @ Q)
    return Q


def pca_reduce(X, n_components: int = 50, *, seed: int = 0) -> np.ndarray:
    """Principal-component scores of ``X``.

    Parameters
    ----------
    X : (N, D) array.
    n_components : number of components kept; ``k = min(n_components, N, D)``.
    seed : seeds the randomized SVD used for large inputs.

    Returns
    -------
    (N, k) float32 array. Each component's sign is fixed (largest loading positive) so
    the result is deterministic.
    """
    X = _as_matrix(X)
    n, d = X.shape
    k = max(1, min(int(n_components), n, d))
    # float64 when it fits comfortably; float32 halves the memory of large matrices.
    dtype = np.float64 if X.size <= 20_000_000 else np.float32
    Xc = X.astype(dtype, copy=True)
    Xc -= Xc.mean(axis=0, keepdims=True)
    if k < 0.5 * min(n, d) and min(n, d) > 500:
        Q = _randomized_basis(Xc, k, np.random.default_rng(seed))
        _, s, Vt = np.linalg.svd(Q.T @ Xc, full_matrices=False)
    else:
        _, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    Vt = Vt[:k]
    signs = np.sign(Vt[np.arange(k), np.abs(Vt).argmax(axis=1)])
    Vt *= np.where(signs == 0, 1, signs)[:, None]
    return (Xc @ Vt.T).astype(np.float32)


def _frame(coords: np.ndarray, ids, method: str) -> pd.DataFrame:
    names = ["x", "y", "z"] + [f"dim{i}" for i in range(3, coords.shape[1])]
    df = pd.DataFrame(coords, columns=names[: coords.shape[1]])
    if ids is not None:
        ids = [str(i) for i in ids]
        if len(ids) != len(df):
            raise ValueError(f"got {len(ids)} ids for {len(df)} embeddings")
        df.insert(0, "example_id", ids)
    df.attrs["method"] = method
    return df


def project_pca(embeddings, n_components: int = 2, *, ids: Sequence | None = None, seed: int = 0,
                cache_dir: str | Path | None = None) -> pd.DataFrame:
    """Fast linear projection: a DataFrame with ``x``, ``y`` (and ``example_id``).

    ``seed`` seeds the randomized SVD of large inputs (:func:`pca_reduce`); ``cache_dir`` is accepted
    like the other projections' and unused (PCA takes seconds: nothing is cached).
    """
    return _frame(pca_reduce(embeddings, n_components, seed=seed), ids, "PCA")


def _cache_key(X: np.ndarray, params: dict, package: str = "umap-learn") -> str:
    h = hashlib.sha256()
    X = np.ascontiguousarray(X)
    h.update(f"{X.dtype.str}{X.shape}".encode())
    h.update(X.tobytes())
    try:
        version = metadata.version(package)  # read without importing the package
    except metadata.PackageNotFoundError:
        version = "none"
    # The UMAP key keeps its historical field name, so caches written before t-SNE existed stay valid.
    name = "umap" if package == "umap-learn" else package
    h.update(json.dumps({**params, name: version, "format": _CACHE_FORMAT},
                        sort_keys=True).encode())
    return h.hexdigest()[:20]


def _read_cached(cache_file: Path | None):
    if cache_file is not None and cache_file.exists():
        return pd.read_parquet(cache_file).to_numpy(dtype=np.float32)
    return None


def _write_cached(cache_file: Path | None, coords: np.ndarray) -> None:
    if cache_file is None:
        return
    atomic_write(cache_file, lambda tmp: _frame(coords, None, "").to_parquet(tmp, index=False))


def _default_numba_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sftmix", "numba")


def project_umap(embeddings, *, n_components: int = 2, pca_dims: int | None = 50,
                 n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0,
                 cache_dir: str | Path | None = None,
                 ids: Sequence | None = None) -> pd.DataFrame:
    """UMAP projection of embeddings, after a PCA pre-reduction.

    Parameters
    ----------
    embeddings : (N, D) array, e.g. pooled last hidden states.
    n_components : output dimensions (columns ``x``, ``y``, then ``z``, ...).
    pca_dims : PCA dimensions before UMAP (``None`` or ``>= D`` skips PCA). Removes
        noise and makes the neighbour search much faster.
    n_neighbors, min_dist : UMAP's parameters.
    seed : ``umap.UMAP(random_state=seed)``: reproducible, but single-threaded, and
        results may still differ across machines and core counts.
    cache_dir : when given, the projection is stored there as parquet, keyed by a
        hash of the embeddings' bytes and every parameter; a repeat call returns it
        without importing umap.
    ids : example ids, returned as an ``example_id`` column.

    Returns
    -------
    DataFrame with ``x``, ``y`` (and ``example_id``); ``df.attrs["method"] == "UMAP"``.
    """
    X = _as_matrix(embeddings)
    params = dict(n_components=int(n_components), pca_dims=pca_dims,
                  n_neighbors=int(n_neighbors), min_dist=float(min_dist), seed=int(seed))
    cache_file = None if cache_dir is None else Path(cache_dir) / f"umap-{_cache_key(X, params)}.parquet"
    cached = _read_cached(cache_file)
    if cached is not None:
        return _frame(cached, ids, "UMAP")

    # numba reads NUMBA_CACHE_DIR when it is first imported. A persistent folder cuts the
    # import from ~14 s to ~2 s; many UMAP/pynndescent kernels still compile in each new
    # process (first fit ~40 s here, benchmarks/README.md), which is why projections are cached.
    if "NUMBA_CACHE_DIR" not in os.environ:
        os.environ["NUMBA_CACHE_DIR"] = _default_numba_cache()
        os.makedirs(os.environ["NUMBA_CACHE_DIR"], exist_ok=True)
    try:
        import umap
    except ImportError as err:
        raise ImportError("project_umap needs umap-learn: pip install umap-learn") from err

    reduced = X if pca_dims is None or pca_dims >= X.shape[1] else pca_reduce(X, pca_dims, seed=seed)
    reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors,
                        min_dist=min_dist, random_state=seed)
    with warnings.catch_warnings():
        # Expected with random_state set; says UMAP runs single-threaded.
        warnings.filterwarnings("ignore", message=".*n_jobs value.*overridden.*")
        coords = np.asarray(reducer.fit_transform(reduced), dtype=np.float32)

    _write_cached(cache_file, coords)
    return _frame(coords, ids, "UMAP")


def project_tsne(embeddings, *, n_components: int = 2, pca_dims: int | None = 50, perplexity: float = 30.0,
                 seed: int = 0, cache_dir: str | Path | None = None, ids: Sequence | None = None) -> pd.DataFrame:
    """t-SNE projection of embeddings (the paper's picture), after a PCA pre-reduction.

    Parameters
    ----------
    embeddings : (N, D) array, e.g. pooled last hidden states.
    n_components : output dimensions (columns ``x``, ``y``, then ``z``, ...).
    pca_dims : PCA dimensions before t-SNE (``None`` or ``>= D`` skips PCA).
    perplexity : t-SNE's effective number of neighbours; lowered to ``(N - 1) / 3`` for
        small inputs, which t-SNE requires.
    seed : ``random_state`` of scikit-learn's ``TSNE`` (initialised by PCA, so results are
        stable across runs on one machine).
    cache_dir : when given, the projection is stored there as parquet, keyed by a hash of
        the embeddings' bytes, every parameter and the scikit-learn version.
    ids : example ids, returned as an ``example_id`` column.

    Returns
    -------
    DataFrame with ``x``, ``y`` (and ``example_id``); ``df.attrs["method"] == "t-SNE"``.
    Distances between clusters and cluster sizes in a t-SNE map carry little meaning;
    neighbourhoods do (:func:`knn_agreement` measures them).
    """
    X = _as_matrix(embeddings)
    if X.shape[0] < 4:
        raise ValueError(f"t-SNE needs at least 4 examples, got {X.shape[0]}")
    perplexity = float(min(perplexity, (X.shape[0] - 1) / 3))
    params = dict(n_components=int(n_components), pca_dims=pca_dims, perplexity=perplexity, seed=int(seed))
    cache_file = None if cache_dir is None else \
        Path(cache_dir) / f"tsne-{_cache_key(X, params, 'scikit-learn')}.parquet"
    cached = _read_cached(cache_file)
    if cached is not None:
        return _frame(cached, ids, "t-SNE")
    try:
        from sklearn.manifold import TSNE
    except ImportError as err:
        raise ImportError("project_tsne needs scikit-learn: pip install scikit-learn") from err
    reduced = X if pca_dims is None or pca_dims >= X.shape[1] else pca_reduce(X, pca_dims, seed=seed)
    tsne = TSNE(n_components=n_components, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed)
    coords = np.asarray(tsne.fit_transform(np.asarray(reduced, dtype=np.float64)), dtype=np.float32)
    _write_cached(cache_file, coords)
    return _frame(coords, ids, "t-SNE")


def _neighbours(xy: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k) of each point's k nearest neighbours, the point itself excluded."""
    n = len(xy)
    _, idx = cKDTree(xy).query(xy, k=k + 1)
    # Drop the point itself; with duplicate points it need not come first.
    is_self = idx == np.arange(n)[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(n), drop] = False
    return idx[keep].reshape(n, k)


def knn_agreement(xy, values, *, k: int = 10, n_shuffles: int = 20, seed: int = 0) -> dict:
    """How much a per-example value agrees with its neighbours in a projection.

    For each point, the absolute difference between its value and the mean value of its
    ``k`` nearest neighbours in ``xy``; averaged over points (``observed``). The same
    statistic with the values randomly permuted over the points (neighbours fixed)
    gives what no spatial structure looks like.

    Returns
    -------
    dict with ``observed``, ``shuffled_mean``, ``shuffled_std``, ``ratio`` (observed /
    shuffled_mean: near 1 for no structure, well below 1 when the value is clustered
    in the space), ``z_score`` ((observed - shuffled_mean) / shuffled_std, negative when
    clustered), ``neighbour_corr`` (Pearson correlation of each value with its
    neighbours' mean), ``k`` and ``n``.
    """
    xy = np.asarray(_as_matrix(xy, "xy"), dtype=np.float64)
    v = np.asarray(values, dtype=np.float64).ravel()
    if len(v) != len(xy):
        raise ValueError(f"got {len(v)} values for {len(xy)} points")
    if not (np.isfinite(v).all() and np.isfinite(xy).all()):
        raise ValueError("xy and values must be finite")
    if not 1 <= k < len(v):
        raise ValueError(f"k must be in [1, N-1] = [1, {len(v) - 1}], got {k}")
    nbrs = _neighbours(xy, k)

    def stat(vals):
        return float(np.mean(np.abs(vals - vals[nbrs].mean(axis=1))))

    observed = stat(v)
    rng = np.random.default_rng(seed)
    shuffled = np.array([stat(rng.permutation(v)) for _ in range(n_shuffles)])
    s_mean = float(shuffled.mean())
    s_std = float(shuffled.std(ddof=1)) if n_shuffles > 1 else 0.0
    nb_mean = v[nbrs].mean(axis=1)
    corr = float(np.corrcoef(v, nb_mean)[0, 1]) if v.std() > 0 and nb_mean.std() > 0 else float("nan")
    return {
        "observed": observed,
        "shuffled_mean": s_mean,
        "shuffled_std": s_std,
        "ratio": observed / s_mean if s_mean > 0 else float("nan"),
        "z_score": (observed - s_mean) / s_std if s_std > 0 else float("nan"),
        "neighbour_corr": corr,
        "k": int(k),
        "n": int(len(v)),
    }


#: The function of each projection of :data:`sftmix.recipe.PROJECTIONS`, by its name.
PROJECTORS = {"umap": project_umap, "pca": project_pca, "tsne": project_tsne}


def project(name: str, embeddings, *, ids: Sequence | None = None, seed: int = 0,
            cache_dir: str | Path | None = None) -> pd.DataFrame:
    """The projection called ``name`` (:data:`sftmix.recipe.PROJECTIONS`: ``umap``, ``pca``, ``tsne``) of
    ``embeddings`` to 2-D; ``seed`` and ``cache_dir`` go to the projections that take them."""
    entry = PROJECTIONS[name]  # a ConfigError naming the choices for an unknown name
    frame = PROJECTORS[entry.name](embeddings, ids=ids, seed=seed, cache_dir=cache_dir)
    frame.attrs["method"] = entry.label
    return frame
