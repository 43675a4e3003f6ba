"""Principal components of another extractor's features, fitted on the training events: :class:`PCA`.

Registered YAML kind: ``pca``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import ConfigError, config, register
from ...hashing import chain_keys, structural_key
from ...memo import Slot
from ...segments import Segments
from ...store import Store
from ..base import Computed, Extractor, ExtractorNotPreparedError, Item, OutOfBounds, Output
from ..event_features import EventFeatureExtractor, Series
from ..recording import RecordingExtractor
from ..selection import check_fit_on, fit_rows
from .wrapper import Wrapper

__all__ = ["PCA", "PCAFit", "training_matrix", "training_rows"]

#: The stored fit of a PCA for an events table, per ``prepare_key`` and store root.
_FIT_MEMO: Slot[dict[str, np.ndarray]] = Slot("PCA fit of an events table")


@register("pca")
@config
class PCA(Wrapper):
    """The inner extractor's features projected on principal components fitted in ``prepare``.

    ``prepare`` prepares the inner extractor (its own store entries), then fits
    :class:`sklearn.decomposition.PCA` on the *stored* features of the training events only
    (``fit_on``) and stores the fit (components, mean, explained variance) under a key chaining
    the inner key, the PCA settings and the identity of the training rows. The fit runs as one
    item through the executor. Reading reads the inner extractor and projects its features:
    ``(x - mean_) @ components_.T`` (divided by ``sqrt(explained_variance_)`` with ``whiten``),
    what ``sklearn``'s ``transform`` computes.

    The rows of the fit: one per training event for static features (an event seen twice
    counts twice); every time sample of each training event or recording for series
    (HuggingFace audio, M/EEG, fMRI). Read segments cut from the events table given to
    ``prepare`` (the training rows are found in it again).

    Parameters
    ----------
    extractor
        An event-feature or recording extractor.
    n_components
        Number of components kept.
    fit_on
        The training events: a split name (``"train"``: the ``split`` column), a query, or
        ``"all"`` (see :mod:`neuralset.extractors.selection`).
    per_layer
        For features shaped ``(layers, features)`` (a HuggingFace extractor with several
        ``layers`` and ``layer_aggregation="none"``): one PCA per layer, output
        ``(layers, n_components)``; otherwise the features are flattened.
    whiten, svd_solver, random_state
        As in :class:`sklearn.decomposition.PCA` (``random_state`` for the randomised solvers).

    Examples
    --------
    >>> PCA(extractor=HuggingFaceText(model="gpt2"), n_components=20, fit_on="train")  # doctest: +SKIP
    """

    read_fields: ClassVar[tuple[str, ...]] = ("output", "aggregation")

    extractor: Extractor
    n_components: int = 10
    fit_on: str = ""
    per_layer: bool = False
    whiten: bool = False
    svd_solver: Literal["full", "covariance_eigh", "randomized", "arpack", "auto"] = "full"
    random_state: int = 0

    def _check(self) -> None:
        if not isinstance(self.extractor, EventFeatureExtractor | RecordingExtractor):
            raise ConfigError(
                "PCA.extractor: a PCA is fitted on stored features, so the extractor must be an "
                f"event-feature or recording extractor, got {type(self.extractor).__name__}; "
                "put the PCA inside other wrappers (e.g. HrfConvolve(extractor=PCA(...)))"
            )
        inner = self.extractor
        if isinstance(inner, EventFeatureExtractor) and not inner.stores_row_features():
            raise ConfigError(
                f"PCA.extractor: {type(inner).__name__} stores no features to fit on (its values "
                "are read from the events table); give an extractor whose prepare stores one "
                "vector or series per event (a text, image or audio extractor), or a recording"
            )
        if self.n_components < 1:
            raise ConfigError(f"PCA.n_components: must be >= 1, got {self.n_components}")
        check_fit_on("PCA.fit_on", self.fit_on)

    # -- prepare ------------------------------------------------------------------------
    def training_keys(self, events: pd.DataFrame) -> list[str]:
        """Store keys of the inner extractor's items for the training rows (table order)."""
        inner = self.extractor
        rows = np.flatnonzero((events["type"] == inner.resolved_event_type).to_numpy())
        train = fit_rows(events, rows, self.fit_on, "PCA.fit_on")
        if isinstance(inner, EventFeatureExtractor):
            return inner.row_keys(events, train)
        return [item.key for item in inner.items(events.iloc[train])]

    def fit_key(self, events: pd.DataFrame) -> str:
        """Key of the stored fit for ``events`` (the PCA settings and the training rows)."""
        return chain_keys(self.prepare_key, structural_key(("fit", self.training_keys(events))))

    def items(self, events: pd.DataFrame) -> list[Item]:
        keys = self.training_keys(events)
        key = chain_keys(self.prepare_key, structural_key(("fit", keys)))
        label = f"PCA({self.n_components}) of {type(self.extractor).__name__} on {len(keys)} rows"
        return [Item(key=key, label=label, payload={"keys": keys})]

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Check that ``fit_on`` selects something and, where the training rows can be
        counted before the inner work (vectors, or inner items already stored), that there
        are at least ``n_components`` of them."""
        keys = self.training_keys(events)
        rows = training_rows(store, keys)
        inner = self.extractor
        if rows is None and isinstance(inner, EventFeatureExtractor) and inner.stores_vectors:
            rows = len(keys)  # one vector per training event
        if rows is not None:
            self.check_rows(rows, len(keys))

    def check_rows(self, rows: int, items: int) -> None:
        """Raise a ``ConfigError`` when ``rows`` training rows (from ``items`` stored training
        items) cannot give ``n_components`` components."""
        if self.n_components <= rows:
            return
        if isinstance(self.extractor, EventFeatureExtractor) and rows == items:
            how = "one per training event"
        else:
            how = f"the time samples of {items} training item" + ("s" if items > 1 else "")
        raise ConfigError(
            f"PCA.n_components: {self.n_components} components need at least as many training "
            f"rows, but fit_on={self.fit_on!r} gives {rows} ({how}); set n_components to at "
            f"most {rows}, or fit on more events (fit_on)"
        )

    def prepare_own(
        self, events: pd.DataFrame, store: Store, *, executor: Any, progress: bool, retry: Any
    ) -> Any:
        from ...execution import run_prepare

        keys = self.training_keys(events)
        rows = training_rows(store, keys)  # the inner items are stored now: before the fit job
        if rows is not None:
            self.check_rows(rows, len(keys))

        # the worker reads the inner items: pass it the store (a root path when pickled)
        bound = PCAFit(self, store)
        return run_prepare(bound, events, store, executor=executor, progress=progress, retry=retry)

    def fit_arrays(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """Fit on ``(rows, *features)``: components ``(layers, k, features)``, mean, variances."""
        from sklearn.decomposition import PCA as SkPCA

        if self.per_layer:
            if matrix.ndim != 3:
                raise ValueError(
                    f"PCA.per_layer: the features of {type(self.extractor).__name__} are shaped "
                    f"{matrix.shape[1:]}, not (layers, features); keep a layer axis "
                    "(several layers with layer_aggregation='none') or set per_layer=False"
                )
            blocks = [matrix[:, i, :] for i in range(matrix.shape[1])]
        else:
            blocks = [matrix.reshape(len(matrix), -1)]
        limit = min(blocks[0].shape)
        if self.n_components > limit:
            raise ValueError(
                f"PCA.n_components: {self.n_components} components from {blocks[0].shape[0]} "
                f"training rows of {blocks[0].shape[1]} features (at most {limit}); lower it"
            )
        fits = [
            SkPCA(
                n_components=self.n_components,
                whiten=self.whiten,
                svd_solver=self.svd_solver,
                random_state=self.random_state,
            ).fit(block)
            for block in blocks
        ]
        return {
            "components": np.stack([f.components_ for f in fits]),
            "mean": np.stack([f.mean_ for f in fits]),
            "explained_variance": np.stack([f.explained_variance_ for f in fits]),
            "explained_variance_ratio": np.stack([f.explained_variance_ratio_ for f in fits]),
        }

    # -- read ---------------------------------------------------------------------------
    def fitted(self, events: pd.DataFrame, store: Store) -> dict[str, np.ndarray]:
        """The stored fit for ``events`` (cached per process)."""
        key = self.fit_key(events)
        cache_key = (str(store.root), key)
        hit = _FITS.get(cache_key)
        if hit is None:
            if not store.has(key):
                raise ExtractorNotPreparedError(
                    f"PCA has no stored fit for the training rows ({self.fit_on!r}) of these "
                    "events; call pca.prepare(events, store) with the events table the segments "
                    "were cut from"
                )
            hit = {k: np.asarray(v, dtype=np.float64) for k, v in store.get_arrays(key).items()}
            _FITS[cache_key] = hit
        return hit

    def transform(self, features: np.ndarray, fit: dict[str, np.ndarray]) -> np.ndarray:
        """Project ``(n, *features)`` rows: ``(n, [layers,] n_components)`` float32."""
        comps, mean = fit["components"], fit["mean"]
        n = features.shape[0]
        x = (
            features.reshape(n, comps.shape[0], -1)
            if self.per_layer
            else features.reshape(n, 1, -1)
        )
        if x.shape[-1] != comps.shape[-1]:
            raise ValueError(
                f"PCA: fitted on {comps.shape[-1]} features but {type(self.extractor).__name__} "
                f"read {x.shape[-1]}"
            )
        y = np.einsum("nlf,lkf->nlk", x - mean[None], comps)
        if self.whiten:
            y /= np.sqrt(fit["explained_variance"])[None]
        return np.ascontiguousarray(y if self.per_layer else y[:, 0], dtype=np.float32)

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        fit = segments.index.memo.get_or_set(
            _FIT_MEMO,
            lambda: self.fitted(segments.events, store),
            self.prepare_key,
            str(store.root),
        )
        out = self.extractor.read(segments, store, out_of_bounds=out_of_bounds)
        data = np.asarray(out.data, dtype=np.float64)
        if self.output == "dynamic":  # (n, *f, t) -> rows (n * t, *f) -> (n, *k, t)
            n, t = data.shape[0], data.shape[-1]
            rows = np.moveaxis(data, -1, 1).reshape((n * t, *data.shape[1:-1]))
            proj = self.transform(rows, fit)
            projected = np.moveaxis(proj.reshape((n, t, *proj.shape[1:])), 1, -1)
        else:
            projected = self.transform(data, fit)
        kept = segments if out.keep is None else segments.select(np.flatnonzero(out.keep))
        empty = self._without_event(kept, store)
        if empty is not None:  # no event there: no features, zeros as in the inner read
            view = projected if self.output == "static" else np.moveaxis(projected, -1, 1)
            view[empty] = 0.0
        return Output(data=np.ascontiguousarray(projected), mask=out.mask, keep=out.keep)

    def _without_event(self, segments: Segments, store: Store) -> np.ndarray | None:
        """Where the inner event-feature extractor read no event (zeros, not features):
        ``(n, time)`` for dynamic reads, ``(n,)`` for means over windows; None when every value
        is an event's (recordings, trigger vectors)."""
        from ..events.table_values import Pulse

        inner = self.extractor
        if not isinstance(inner, EventFeatureExtractor) or not len(segments):
            return None
        etype = inner.resolved_event_type
        if self.output == "static":
            if inner.aggregation == "trigger":
                return None
            seg, _ = segments.overlapping(etype)
            return np.bincount(seg, minlength=len(segments)) == 0  # type: ignore[no-any-return]
        freq = inner.frequency
        if freq is None:  # painted at the rate of the stored series
            reference = inner._reference_value(segments, store)
            freq = reference.sfreq if isinstance(reference, Series) else None
            if freq is None:
                return None
        painted = Pulse(event_type=etype, frequency=float(freq)).read(segments, store).data
        return painted[:, 0] == 0  # type: ignore[no-any-return]


#: Per-process cache of loaded fits: (store root, key) -> arrays.
_FITS: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def training_rows(store: Store, keys: Sequence[str]) -> int | None:
    """Rows :func:`training_matrix` would give, from the stored entries' index records (no
    array is read); None while an entry is missing."""
    if store.missing(keys):
        return None
    total = 0
    for key, count in Counter(keys).items():  # a key listed twice is fitted twice
        record = store.info(key)
        n = int(record["files"]["data"]["shape"][0]) if record["kind"] == "arrays" else 1
        total += n * count
    return total


def training_matrix(store: Store, keys: Sequence[str]) -> np.ndarray:
    """The stored features of ``keys`` as rows ``(rows, *features)`` float64.

    A stored vector is one row; a stored series or recording ``(time, *features)`` gives one
    row per time sample.
    """
    from ...store.store import StoreError

    blocks = []
    for key in keys:
        try:
            try:
                blocks.append(np.asarray(store.get_value(key), dtype=np.float64)[None])
                continue
            except StoreError as err:
                if "holds arrays" not in str(err):
                    raise
            blocks.append(np.asarray(store.get_arrays(key)["data"], dtype=np.float64))
        except Exception as err:
            raise ExtractorNotPreparedError(
                f"PCA: the inner extractor's item {key} is not in {store.root}; prepare it first"
            ) from err
    return np.concatenate(blocks, axis=0)


class PCAFit:
    """What the prepare driver runs for the fit item: the PCA config plus the store to read.

    Not a config (it holds a store); its provenance records the PCA's config.
    """

    def __init__(self, pca: PCA, store: Store) -> None:
        self.pca = pca
        self.store = store
        self.batch_size = 1
        self.store_dtype = pca.store_dtype

    @property
    def requires_gpu(self) -> bool:
        """The fit runs scikit-learn on CPU."""
        return False

    @property
    def prepare_key(self) -> str:
        return self.pca.prepare_key

    def items(self, events: pd.DataFrame) -> list[Item]:
        return self.pca.items(events)

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        out = []
        for item in items:
            matrix = training_matrix(self.store, item.payload["keys"])
            arrays = self.pca.fit_arrays(matrix)
            meta = {"n_rows": int(len(matrix)), "fit_on": self.pca.fit_on}
            out.append(Computed(arrays=arrays, meta=meta))
        return out

    def to_storage(self, computed: Computed, label: str = "") -> Computed:
        return self.pca.to_storage(computed, label)

    def fit(self, events: pd.DataFrame, store: Store) -> None:
        pass

    def to_dict(self) -> dict[str, Any]:
        return self.pca.to_dict()

    def __repr__(self) -> str:
        return f"{self.pca!r} (fit)"
