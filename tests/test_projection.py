"""Tests for sftmix.analysis.projection: PCA, projections, the UMAP cache and knn_agreement."""
from __future__ import annotations

import os
import sys
import types

import numpy as np
import pandas as pd
import pytest

from sftmix.analysis.projection import knn_agreement, pca_reduce, project_pca, project_umap

# A persistent numba cache so UMAP's ~80 s compilation happens once per machine.
NUMBA_CACHE = "/tmp/sftmix-test-numba-cache"


@pytest.fixture(autouse=True)
def _numba_cache(monkeypatch):
    # project_umap sets NUMBA_CACHE_DIR when it is unset; keep that inside the tests
    # (restored afterwards) and pointed at a persistent folder, not the home directory.
    monkeypatch.setenv("NUMBA_CACHE_DIR", os.environ.get("NUMBA_CACHE_DIR", NUMBA_CACHE))


def clustered(n: int = 300, d: int = 40, seed: int = 0):
    """Embeddings in three clusters; the value is high in one cluster, low in another."""
    rng = np.random.default_rng(seed)
    label = np.arange(n) % 3
    centres = rng.normal(0, 6, (3, d))
    X = centres[label] + rng.normal(0, 1, (n, d))
    return X.astype(np.float32), label


# --------------------------------------------------------------------------- PCA
def test_pca_shape_dtype_and_determinism():
    X, _ = clustered()
    Z = pca_reduce(X, 10, seed=0)
    assert Z.shape == (300, 10) and Z.dtype == np.float32
    assert np.array_equal(Z, pca_reduce(X, 10, seed=0))
    # k = min(n_components, N, D)
    assert pca_reduce(X, 100).shape == (300, 40)
    assert pca_reduce(X[:5], 50).shape == (5, 5)
    # components come in decreasing variance and are uncorrelated
    var = Z.var(axis=0)
    assert np.all(np.diff(var) <= 1e-4 * var[0])
    cov = np.cov(Z.T)
    assert np.allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-3 * var[0])


def test_pca_randomized_path_matches_exact():
    rng = np.random.default_rng(1)
    # low-rank signal plus noise, large enough for the randomized SVD (min(N, D) > 500)
    X = rng.normal(size=(800, 5)) @ rng.normal(size=(5, 520)) * 5 + rng.normal(size=(800, 520))
    fast = pca_reduce(X, 5, seed=0)
    Xc = X - X.mean(0)
    _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
    exact = Xc @ Vt[:5].T
    for j in range(5):  # equal up to sign
        assert abs(np.corrcoef(fast[:, j], exact[:, j])[0, 1]) > 0.999


def test_project_pca_columns_and_ids():
    X, _ = clustered()
    df = project_pca(X)
    assert list(df.columns) == ["x", "y"] and len(df) == 300
    assert df.attrs["method"] == "PCA"
    df = project_pca(X, ids=range(300))
    assert list(df.columns) == ["example_id", "x", "y"] and df["example_id"].iloc[2] == "2"
    with pytest.raises(ValueError, match="ids"):
        project_pca(X, ids=range(10))
    with pytest.raises(ValueError):
        project_pca(np.zeros(5))


# ------------------------------------------------------------------- knn agreement
def test_knn_agreement_smooth_vs_random():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 10, (2000, 2))
    smooth = np.sin(xy[:, 0]) + 0.1 * rng.normal(size=2000)
    res = knn_agreement(xy, smooth, k=10)
    assert res["ratio"] < 0.5 and res["z_score"] < -10 and res["neighbour_corr"] > 0.8
    noise = knn_agreement(xy, rng.normal(size=2000), k=10)
    assert 0.9 < noise["ratio"] < 1.1 and abs(noise["neighbour_corr"]) < 0.1
    assert set(res) >= {"observed", "shuffled_mean", "shuffled_std", "ratio", "k", "n"}
    assert knn_agreement(xy, smooth, k=10) == res  # seeded


def test_knn_agreement_excludes_self_and_validates():
    # Two far-apart pairs: each point's only neighbour (k=1) is its partner.
    xy = np.array([[0, 0], [0, 1], [100, 0], [100, 1]], dtype=float)
    res = knn_agreement(xy, [1.0, 1.0, 5.0, 5.0], k=1, n_shuffles=5)
    assert res["observed"] == 0.0
    # duplicated points: the point itself is still excluded
    res = knn_agreement(np.zeros((4, 2)), [0.0, 1.0, 2.0, 3.0], k=3, n_shuffles=2)
    assert res["observed"] == pytest.approx(np.mean([2, 2 / 3, 2 / 3, 2]))
    with pytest.raises(ValueError, match="k"):
        knn_agreement(xy, [1, 2, 3, 4], k=4)
    with pytest.raises(ValueError, match="values"):
        knn_agreement(xy, [1, 2, 3])


# -------------------------------------------------------------- UMAP without umap
class FakeUMAP:
    """Stands in for umap.UMAP to test the cache logic in milliseconds."""
    fits = 0

    def __init__(self, n_components, n_neighbors, min_dist, random_state):
        self.n_components = n_components

    def fit_transform(self, X):
        FakeUMAP.fits += 1
        return X[:, : self.n_components] * 2


def test_umap_cache_hit_skips_umap(monkeypatch, tmp_path):
    X, _ = clustered()
    FakeUMAP.fits = 0
    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    first = project_umap(X, cache_dir=tmp_path, ids=[f"e{i}" for i in range(300)])
    assert FakeUMAP.fits == 1 and list(first.columns) == ["example_id", "x", "y"]
    assert first.attrs["method"] == "UMAP"
    assert len(list(tmp_path.glob("umap-*.parquet"))) == 1
    # a repeat call reads the cache even when umap cannot be imported
    monkeypatch.setitem(sys.modules, "umap", None)
    again = project_umap(X, cache_dir=tmp_path, ids=[f"e{i}" for i in range(300)])
    pd.testing.assert_frame_equal(first, again)
    # other parameters or other data: a different cache entry
    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    project_umap(X, cache_dir=tmp_path, n_neighbors=5)
    X2 = X.copy()
    X2[0, 0] += 1
    project_umap(X2, cache_dir=tmp_path)
    assert FakeUMAP.fits == 3 and len(list(tmp_path.glob("umap-*.parquet"))) == 3


def test_umap_missing_names_the_install_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(ImportError, match="pip install umap-learn"):
        project_umap(np.zeros((10, 3)))


def test_umap_sets_numba_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR")  # set by the autouse fixture, restored after
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    project_umap(clustered()[0])
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "sftmix" / "numba")
    assert (tmp_path / "sftmix" / "numba").is_dir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    project_umap(clustered()[0])
    assert os.environ["NUMBA_CACHE_DIR"] == "/somewhere/else"  # the user's choice wins


# ------------------------------------------------------------------- real UMAP
@pytest.mark.slow
def test_real_umap_is_deterministic_and_cached(monkeypatch, tmp_path):
    pytest.importorskip("umap")
    X, label = clustered(n=300, d=60)
    a = project_umap(X, pca_dims=20, seed=0, cache_dir=tmp_path)
    b = project_umap(X, pca_dims=20, seed=0)  # no cache: fitted again
    np.testing.assert_allclose(a[["x", "y"]].to_numpy(), b[["x", "y"]].to_numpy(), atol=1e-5)
    # the three clusters stay apart in the projection
    assert knn_agreement(a[["x", "y"]].to_numpy(), label, k=10)["ratio"] < 0.2
    monkeypatch.setitem(sys.modules, "umap", None)
    c = project_umap(X, pca_dims=20, seed=0, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(a, c)


# ------------------------------------------------------------------- t-SNE
def test_tsne_separates_clusters_is_deterministic_and_cached(monkeypatch, tmp_path):
    pytest.importorskip("sklearn")
    from sftmix.analysis.projection import project_tsne

    X, label = clustered(n=150, d=20)
    a = project_tsne(X, pca_dims=10, seed=0, cache_dir=tmp_path, ids=[f"e{i}" for i in range(150)])
    assert a.attrs["method"] == "t-SNE" and list(a.columns) == ["example_id", "x", "y"]
    assert knn_agreement(a[["x", "y"]].to_numpy(), label, k=10)["ratio"] < 0.2  # clusters stay apart
    b = project_tsne(X, pca_dims=10, seed=0)
    np.testing.assert_allclose(a[["x", "y"]].to_numpy(), b[["x", "y"]].to_numpy(), atol=1e-4)
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)  # the cache answers without scikit-learn
    c = project_tsne(X, pca_dims=10, seed=0, cache_dir=tmp_path, ids=[f"e{i}" for i in range(150)])
    pd.testing.assert_frame_equal(a, c)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        project_tsne(X[:50], seed=1)
    with pytest.raises(ValueError, match="at least 4"):
        project_tsne(X[:3])
