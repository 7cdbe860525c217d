"""Interventional TreeSHAP against a fixed background, tabulated once per model.

The interventional Shapley value of a tree ensemble against one background row ``r`` splits
each leaf's value among the features on the leaf's path (Laberge and Pequignot, "Understanding
Interventional TreeSHAP: How and Why it Works", arXiv:2209.15123). For a leaf, let ``A`` be
the path's features whose splits the explained row ``x`` satisfies and ``r`` does not, ``B``
those ``r`` satisfies and ``x`` does not; the others are satisfied by both (they do not
matter) or by neither (no mix of ``x`` and ``r`` reaches the leaf, which then gives nothing).
With ``a = |A|`` and ``b = |B|``, a feature of ``A`` gets ``value * (a-1)! b! / (a+b)!`` and
a feature of ``B`` gets ``-value * a! (b-1)! / (a+b)!``. Over a background the values are the
mean of these. The result adds up to the margin minus the background's mean margin.

``shap.TreeExplainer(booster, data=..., feature_perturbation="interventional")`` computes
the same numbers, looping in C over every (row, background row) pair: about 15 µs per
background row per decision here, single-threaded. Because the background is fixed, what a
leaf gives depends on ``x`` only through which of its path features ``x`` satisfies (at most
2^d patterns for d features on a path); those means are worked out here at load, so that a
decision costs one pass over the leaves whatever the background's size.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

# Paths with more distinct features make the tables (2^d patterns squared) too large.
MAX_PATH_FEATURES = 6
# Rows per pass: the work arrays of a pass stay in the cache.
CHUNK_ROWS = 32
# Rows per thread's share of a batch: numpy releases the GIL in the work of each pass.
BLOCK_ROWS = 1024


class TreeShapError(ValueError):
    """A model whose trees this explainer cannot tabulate."""


@dataclass(frozen=True, slots=True)
class _Paths:
    """Every leaf's path through its tree, as arrays over the ensemble's internal nodes."""

    node_feature: np.ndarray       # (N,) feature index of each internal node
    node_threshold: np.ndarray     # (N,) float32: a row goes left when x < threshold
    node_default_left: np.ndarray  # (N,) where a missing value goes
    leaf_value: np.ndarray         # (L,)
    step_node: np.ndarray          # (L, depth) internal node of each step; N pads
    step_left: np.ndarray          # (L, depth) whether the path goes left there
    step_slot: np.ndarray          # (L, depth) which of the path's features the step tests
    slot_feature: np.ndarray       # (L, d) feature of each of the path's features; -1 pads
    slots: int                     # d: the most distinct features on any path


def _paths(booster: Any) -> _Paths:
    """Read the trees of an XGBoost booster (its own JSON) into path arrays."""
    learner = json.loads(booster.save_raw("json"))["learner"]
    params = learner["learner_model_param"]
    if max(int(params.get("num_class", 0)), 1) != 1 or int(params.get("num_target", 1)) != 1:
        raise TreeShapError("interventional contributions need a model with one output")
    gbm = learner["gradient_booster"]
    if gbm["name"] != "gbtree":
        raise TreeShapError(f"interventional contributions need a gbtree model; "
                            f"got {gbm['name']}")
    trees = gbm["model"]["trees"]
    feature: list[int] = []
    threshold: list[float] = []
    default_left: list[bool] = []
    leaf_value: list[float] = []
    paths: list[list[tuple[int, bool, int]]] = []
    slot_features: list[list[int]] = []
    for tree in trees:
        if any(tree.get("split_type", ())):
            raise TreeShapError("interventional contributions need numerical splits only")
        left, right = tree["left_children"], tree["right_children"]
        internal = {k: len(feature) + i for i, k in
                    enumerate(k for k in range(len(left)) if left[k] != -1)}
        for k in internal:
            feature.append(tree["split_indices"][k])
            threshold.append(tree["split_conditions"][k])
            default_left.append(bool(tree["default_left"][k]))
        stack: list[tuple[int, list[tuple[int, bool, int]], list[int]]] = [(0, [], [])]
        while stack:
            k, path, used = stack.pop()
            if left[k] == -1:
                # A leaf's value is kept in the split-condition field.
                leaf_value.append(tree["split_conditions"][k])
                paths.append(path)
                slot_features.append(used)
                continue
            f = tree["split_indices"][k]
            seen = used if f in used else [*used, f]
            slot = seen.index(f)
            stack.append((left[k], [*path, (internal[k], True, slot)], seen))
            stack.append((right[k], [*path, (internal[k], False, slot)], seen))
    slots = max((len(s) for s in slot_features), default=0)
    if slots > MAX_PATH_FEATURES:
        raise TreeShapError(f"interventional contributions need at most {MAX_PATH_FEATURES} "
                            f"distinct features on a path; got {slots}")
    depth = max((len(p) for p in paths), default=0)
    n_leaves, pad = len(paths), len(feature)
    step_node = np.full((n_leaves, depth), pad, dtype=np.intp)
    step_left = np.ones((n_leaves, depth), dtype=bool)
    step_slot = np.full((n_leaves, depth), -1, dtype=np.intp)
    slot_feature = np.full((n_leaves, max(slots, 1)), -1, dtype=np.intp)
    for i, (path, used) in enumerate(zip(paths, slot_features, strict=True)):
        for j, (node, went_left, slot) in enumerate(path):
            step_node[i, j], step_left[i, j], step_slot[i, j] = node, went_left, slot
        slot_feature[i, :len(used)] = used
    return _Paths(np.asarray(feature, dtype=np.intp), np.asarray(threshold, dtype=np.float32),
                  np.asarray(default_left, dtype=bool), np.asarray(leaf_value, dtype=np.float64),
                  step_node, step_left, step_slot, slot_feature, slots)


def _shapley_weights(slots: int) -> np.ndarray:
    """Return w[xp, rp, s]: what one leaf of value 1 gives path feature s against one row.

    ``xp`` and ``rp`` are bit patterns of the path features the explained row and the
    background row satisfy.
    """
    size = 1 << slots
    xp, rp = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    full = size - 1
    only_x, only_r, neither = xp & ~rp & full, rp & ~xp & full, ~xp & ~rp & full
    bits = np.arange(slots)
    in_a = (only_x[..., None] >> bits) & 1
    in_b = (only_r[..., None] >> bits) & 1
    a, b = in_a.sum(axis=2), in_b.sum(axis=2)
    fact = np.array([math.factorial(k) for k in range(slots + 2)], dtype=np.float64)
    n = a + b
    gain = fact[np.maximum(a - 1, 0)] * fact[b] / fact[n]
    loss = fact[a] * fact[np.maximum(b - 1, 0)] / fact[n]
    weights = in_a * gain[..., None] - in_b * loss[..., None]
    return np.where(((neither == 0) & (n > 0))[..., None], weights, 0.0)


class InterventionalTreeShap:
    """Exact interventional TreeSHAP of an XGBoost booster against a fixed background.

    Built once per model (a few tens of milliseconds); thread-safe, as it only reads its
    tables. ``background`` is in the model's feature order, NaN for missing.
    """

    def __init__(self, booster: Any, background: np.ndarray) -> None:
        background = np.asarray(background, dtype=np.float64)
        if background.ndim != 2 or background.shape[0] == 0:
            raise TreeShapError("the background must be a non-empty matrix of rows")
        self.n_features = background.shape[1]
        paths = _paths(booster)
        if paths.node_feature.size and paths.node_feature.max() >= self.n_features:
            raise TreeShapError(f"the model splits on feature {paths.node_feature.max()}; the "
                                f"background has {self.n_features} columns")
        self._paths = paths
        self._size = 1 << paths.slots
        self._full = np.uint8(self._size - 1)
        bit = np.where(paths.step_slot >= 0, 1 << np.maximum(paths.step_slot, 0), 0)
        self._step_bit = bit.astype(np.uint8)
        n_leaves = paths.leaf_value.size
        # Each background row's pattern at each leaf, counted.
        patterns = self._patterns(background)
        leaf_offset = np.arange(n_leaves) * self._size
        counts = np.bincount((patterns.astype(np.intp) + leaf_offset).ravel(),
                             minlength=n_leaves * self._size).reshape(n_leaves, self._size)
        share = counts / background.shape[0]
        table = np.einsum("lr,xrs->lsx", share, _shapley_weights(paths.slots))
        table *= paths.leaf_value[:, None, None]
        # The (leaf, slot) entries that name a feature, grouped by feature, each with its
        # row of the table (one value per pattern): one gather, in the order of memory, and
        # one reduceat give every feature's sum.
        leaves, slot = np.nonzero(paths.slot_feature >= 0)
        features = paths.slot_feature[leaves, slot]
        order = np.argsort(features, kind="stable")
        leaves, slot, features = leaves[order], slot[order], features[order]
        self._table = np.ascontiguousarray(table[leaves, slot]).ravel()   # [entry, pattern]
        self._entry_leaf = leaves
        self._entry_base = (np.arange(leaves.size) * self._size).astype(np.int32)
        self._starts = np.flatnonzero(np.r_[True, features[1:] != features[:-1]]) \
            if features.size else np.zeros(0, dtype=np.intp)
        self._start_features = features[self._starts]

    def _patterns(self, x: np.ndarray) -> np.ndarray:
        """Return, for rows of x, the bit pattern of path features each leaf's path admits."""
        p = self._paths
        x32 = np.asarray(x, dtype=np.float32)
        value = x32[:, p.node_feature]
        # XGBoost's rule: left when x < threshold (in float32), a missing value by default.
        went_left = (value < p.node_threshold) | (np.isnan(value) & p.node_default_left)
        went_left = np.concatenate([went_left, np.ones((x32.shape[0], 1), dtype=bool)], axis=1)
        failed = np.zeros((x32.shape[0], p.leaf_value.size), dtype=np.uint8)
        for j in range(p.step_node.shape[1]):
            failed |= (went_left[:, p.step_node[:, j]] != p.step_left[:, j]) * self._step_bit[:, j]
        return self._full & ~failed

    def __call__(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        """Return the contributions (n, F) of rows of x against the background.

        A batch of more than ``BLOCK_ROWS`` rows is shared among ``threads`` threads; each
        row's values are the same however the rows are shared.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[1] != self.n_features:
            raise ValueError(f"rows must have {self.n_features} features; got {x.shape[1]}")
        out = np.zeros((x.shape[0], self.n_features))
        if not self._starts.size:
            return out
        if threads <= 1 or x.shape[0] <= BLOCK_ROWS:
            self._fill(x, out)
            return out
        blocks = range(0, x.shape[0], BLOCK_ROWS)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda first: self._fill(x[first:first + BLOCK_ROWS],
                                                   out[first:first + BLOCK_ROWS]), blocks))
        return out

    def _fill(self, x: np.ndarray, out: np.ndarray) -> None:
        """Write the contributions of rows x into out, a pass of ``CHUNK_ROWS`` at a time."""
        for first in range(0, x.shape[0], CHUNK_ROWS):
            chunk = x[first:first + CHUNK_ROWS]
            index = self._patterns(chunk)[:, self._entry_leaf].astype(np.int32)
            index += self._entry_base
            sums = np.add.reduceat(np.take(self._table, index), self._starts, axis=1)
            out[first:first + chunk.shape[0], self._start_features] = sums
