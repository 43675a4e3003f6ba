"""Shared machinery of the HuggingFace extractors: model identity, loading, devices, layers.

Nothing here imports ``transformers`` or ``torch`` at module import time, and nothing loads or
downloads a model when an extractor is constructed: :func:`load_model` runs inside
``compute_many`` (once per worker process, cached in a module-level dictionary keyed by what
changes the loaded model).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ...config import config
from ...execution.records import ComputeSetupError
from ...hashing import (
    KEY_EXCLUDED,
    KEY_UNLESS_DEFAULT,
    class_identity,
    keyed_fields,
    legacy_mode,
    structural_key,
)
from ...memo import Slot, frozen_memo
from ...segments import Segments
from ...store import Store
from ...validation import existing_path, require, required
from ..base import Item, OutOfBounds, Output
from ..event_features import EventFeatureExtractor
from .model_identity import model_identity

__all__ = [
    "HuggingFaceExtractor",
    "HuggingFaceMediaExtractor",
    "ModelNotAvailableError",
    "check_model_available",
    "load_model",
    "resolve_device",
    "select_layers",
    "clear_model_cache",
]


class ModelNotAvailableError(ComputeSetupError):
    """A HuggingFace model cannot be found locally and may not be downloaded.

    A :class:`~neuralset.execution.ComputeSetupError`: ``prepare`` does not retry it item by item.
    """


def _offline() -> bool:
    """Whether downloads are off (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    import huggingface_hub.constants

    flags = [os.environ.get(n, "") for n in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")]
    return bool(huggingface_hub.constants.HF_HUB_OFFLINE) or any(f not in ("", "0") for f in flags)


def _how_to_provide(model: str) -> str:
    import huggingface_hub.constants

    return (
        "Provide it in one of these ways: a local folder written by save_pretrained (set "
        f"`model` to that folder); the HuggingFace cache ({huggingface_hub.constants.HF_HUB_CACHE}): "
        f"run `hf download {model}` on a machine with internet and copy the cache here (or point "
        "HF_HOME at it); and on machines without internet set HF_HUB_OFFLINE=1, so that a "
        "missing model fails at once instead of after the hub's retries."
    )


def check_model_available(model: str, revision: str = "main", *, timeout: float = 5.0) -> None:
    """Check in seconds, loading nothing, that ``model`` can be loaded.

    A local folder or a hub id whose ``config.json`` is in the HuggingFace cache is available;
    otherwise the hub is asked about the model (one request, ``timeout`` seconds), unless
    downloads are off (``HF_HUB_OFFLINE=1``).

    Raises
    ------
    ModelNotAvailableError
        Saying why (offline, hub unreachable, no such model, gated) and how to provide it.
    """
    if _is_local(model):
        return
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model, "config.json", revision=revision), str):
        return
    where = f"model {model!r} (revision {revision!r}) is not in the local HuggingFace cache"
    if _offline():
        raise ModelNotAvailableError(
            f"{where} and HF_HUB_OFFLINE=1 forbids downloading it. {_how_to_provide(model)}"
        )
    from huggingface_hub import model_info
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        model_info(model, revision=revision, timeout=timeout)
    except GatedRepoError:
        raise ModelNotAvailableError(
            f"{where} and it is gated on the hub: accept its licence on huggingface.co and log in "
            f"(`hf auth login` or HF_TOKEN). {_how_to_provide(model)}"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        raise ModelNotAvailableError(
            f"{where} and the hub has no such model or revision ({type(err).__name__}); check "
            "the id and revision, or give a local folder"
        ) from None
    except Exception as err:  # network errors come in many types (httpx, OSError, timeouts)
        raise ModelNotAvailableError(
            f"{where} and the hub cannot be reached ({type(err).__name__}: {err}). "
            f"{_how_to_provide(model)}"
        ) from None


#: loaded (model, processor) per loading key, one copy per worker process
_MODELS: dict[str, tuple[Any, Any]] = {}
#: :attr:`HuggingFaceExtractor.prepare_key` per model identity.
_HF_PREPARE_KEY: Slot[str] = Slot("prepare key per model identity")


def clear_model_cache() -> None:
    """Forget the models loaded in this process (frees their memory)."""
    _MODELS.clear()


def _is_local(model: str) -> bool:
    return Path(model).expanduser().is_dir()


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or model.count("/") > 1


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; ``"cuda"`` without one fails."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "device='cuda' was asked but torch sees no CUDA device; use device='auto' or 'cpu'"
        )
    return device


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def load_model(
    model: str,
    revision: str,
    *,
    device: str,
    dtype: str,
    loader: Callable[..., Any],
    processor_loader: Callable[..., Any] | None,
    tag: str,
    pretrained: bool = True,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Load (once per process) a model and its processor, on ``device`` in ``dtype``.

    Parameters
    ----------
    model, revision
        Hub id and revision, or a local folder (revision ignored).
    device, dtype
        Where the model runs (``"cpu"``, ``"cuda"``...) and its parameters' dtype name
        (``"float32"``, ``"float16"``...).
    loader
        ``loader(name, **kwargs) -> model`` (e.g. ``AutoModel.from_pretrained``); it receives
        ``output_loading_info=True`` and any missing weight fails the load (a model class that
        does not match the checkpoint would otherwise silently keep random weights).
    processor_loader
        ``processor_loader(name, **kwargs) -> processor`` or None.
    tag
        Distinguishes several loaders of the same checkpoint in the cache.
    pretrained, seed
        With ``pretrained=False``, the untrained control: a model of the same class and
        configuration built with ``type(model)(model.config)`` after ``torch.manual_seed(seed)``
        (the architecture's own random initialisation), instead of the checkpoint's weights.

    Raises
    ------
    ModelNotAvailableError
        The model is not local and downloads are off (``HF_HUB_OFFLINE=1``) or failed.
    """
    device = resolve_device(device)
    identity = model_identity(model, revision)
    cache_key = structural_key((tag, model, revision, device, dtype, identity, pretrained, seed))
    if cache_key in _MODELS:
        return _MODELS[cache_key]
    local = _is_local(model)
    kwargs: dict[str, Any] = {} if local else {"revision": revision}
    try:
        net, info = loader(model, output_loading_info=True, dtype=_torch_dtype(dtype), **kwargs)
        proc = processor_loader(model, **kwargs) if processor_loader is not None else None
    except OSError as err:
        where = (
            "HF_HUB_OFFLINE=1 forbids downloading it"
            if _offline()
            else f"it could not be downloaded ({err})"
        )
        raise ModelNotAvailableError(
            f"model {model!r} (revision {revision!r}) is not in the local HuggingFace cache and "
            f"{where}. {_how_to_provide(model)}"
        ) from err
    missing = list(info.get("missing_keys", []) or [])
    if missing:
        raise ModelNotAvailableError(
            f"model {model!r}: the checkpoint lacks {len(missing)} weights of {type(net).__name__} "
            f"(e.g. {missing[:3]}); the folder does not hold this kind of model"
        )
    if not pretrained:
        net = _untrained(net, seed, dtype)
    net = net.to(device).eval()
    _MODELS[cache_key] = (net, proc)
    return net, proc


def _untrained(net: Any, seed: int, dtype: str) -> Any:
    """A freshly initialised model of the same class and configuration (seeded)."""
    import torch

    torch.manual_seed(seed)
    return type(net)(net.config).to(_torch_dtype(dtype))


def select_layers(
    hidden_states: Sequence[Any], layers: int | float | tuple[int | float, ...]
) -> list[int]:
    """Indices into ``hidden_states`` (embeddings output first) chosen by ``layers``.

    A float in ``[0, 1]`` is a relative depth (``0.0`` the embeddings, ``1.0`` the last layer,
    rounded to the nearest layer); an int is an index (negative from the end).

    Raises
    ------
    ValueError
        An int outside ``[-n, n - 1]`` for ``n`` hidden states (it would otherwise wrap around
        to another layer).
    """
    n = len(hidden_states)
    chosen = layers if isinstance(layers, tuple) else (layers,)
    out = []
    for layer in chosen:
        if isinstance(layer, float):
            out.append(int(round(layer * (n - 1))))
        elif not -n <= int(layer) < n:
            raise ValueError(
                f"layers: index {layer} is out of range for this model's {n} hidden states (the "
                f"embeddings, then {n - 1} layers); use an int in [{-n}, {n - 1}] or a relative "
                "depth in [0, 1] (1.0: the last layer)"
            )
        else:
            out.append(int(layer) % n)
    return out


def aggregate_layers(stack: np.ndarray, how: str) -> np.ndarray:
    """``stack`` is ``(layers, ..., features)``: mean, concatenate along features, or keep."""
    if how == "mean":
        return stack.mean(axis=0)
    if how == "concat":
        return np.concatenate(list(stack), axis=-1)
    return np.moveaxis(stack, 0, -2)  # (..., layers, features)


@config
class HuggingFaceExtractor(EventFeatureExtractor):
    """Base of the HuggingFace extractors (fields shared by text, audio, image, video).

    Parameters
    ----------
    model
        Hub id (``"gpt2"``) or a local folder written by ``save_pretrained``.
    revision
        Hub revision (branch, tag or commit); ignored for a local folder.
    layers
        Hidden state(s) to keep: a float in ``[0, 1]`` is a relative depth (0 the embeddings,
        1 the last layer), an int an index into the hidden states (embeddings first, negative
        from the end); a tuple selects several.
    layer_aggregation
        Several layers are averaged (``"mean"``), concatenated along features (``"concat"``) or
        kept as an axis (``"none"``: ``(..., layers, features)``).
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``; not part of the key.
    dtype
        Model weights and compute dtype; stored features are float32 (see ``store_dtype``).
    pretrained, seed
        ``pretrained=False`` is the untrained-network control: the same architecture with
        random weights (``type(model)(model.config)`` after ``torch.manual_seed(seed)``).
    store_all_layers
        Store every hidden state once; ``layers`` and ``layer_aggregation`` are then chosen when
        reading (they leave the key: other layer choices read the same stored items).
    """

    model: str = ""
    revision: str = "main"
    layers: int | float | tuple[int | float, ...] = 1.0
    layer_aggregation: Literal["mean", "concat", "none"] = "mean"
    device: Literal["auto", "cpu", "cuda"] = dataclasses.field(
        default="auto", metadata=KEY_EXCLUDED
    )
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    pretrained: bool = dataclasses.field(default=True, metadata=KEY_UNLESS_DEFAULT)
    seed: int = dataclasses.field(default=0, metadata=KEY_UNLESS_DEFAULT)
    store_all_layers: bool = dataclasses.field(default=False, metadata=KEY_UNLESS_DEFAULT)

    def _check(self) -> None:
        require(
            self.seed == 0 or not self.pretrained,
            self,
            "seed",
            f"only used with pretrained=False (the untrained control), got seed={self.seed}",
        )
        required(self, "model", "give a HuggingFace hub id or a local model folder")
        if _looks_like_path(self.model):
            existing_path(
                self,
                "model",
                "folder",
                value=Path(self.model).expanduser(),
                fix="give an existing folder written by save_pretrained, or a hub id such as 'gpt2'",
            )
        required(self, "layers", "select at least one layer")
        for layer in self.layers if isinstance(self.layers, tuple) else (self.layers,):
            require(
                not isinstance(layer, float) or 0.0 <= layer <= 1.0,
                self,
                "layers",
                f"relative depth {layer} must be within [0, 1] (use an int for an index)",
            )

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Check, in seconds and before any work, that the model can be loaded when needed.

        Nothing is asked of the hub when the model is a local folder or in the HuggingFace
        cache, or when every item is already stored (see :func:`check_model_available`).

        Raises
        ------
        ModelNotAvailableError
            The model is neither local nor cached, and downloads are off or the hub cannot be
            reached; the message says how to provide it.
        """
        super().preflight(events, store)
        if _is_local(self.model):
            return
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(self.model, "config.json", revision=self.revision)
        if isinstance(cached, str) or not store.missing(i.key for i in self.items(events)):
            return
        try:
            check_model_available(self.model, self.revision)
        except ModelNotAvailableError as err:
            raise ModelNotAvailableError(f"{type(self).__name__}.model: {err}") from None

    @property
    def requires_gpu(self) -> bool:
        """Whether executors should request a GPU for ``prepare`` (``device="cuda"``)."""
        return self.device == "cuda"

    @property
    def prepare_key(self) -> str:
        """Config key with the model given by :func:`model_identity` instead of its name.

        Computed once per instance and model identity (a local folder whose files change
        gets a new key).
        """
        return self._key_for(model_identity(self.model, self.revision))

    def _read_key(self) -> str:  # the model folder listed at most once a second
        return self._key_for(model_identity(self.model, self.revision, max_age=1.0))

    def _key_for(self, identity: tuple[str, ...]) -> str:
        if legacy_mode():  # migrating a store: old-format keys, never memoised
            return self._model_prepare_key(identity)
        return frozen_memo(self).get_or_set(
            _HF_PREPARE_KEY, lambda: self._model_prepare_key(identity), identity
        )

    def _model_prepare_key(self, identity: tuple[str, ...]) -> str:
        cls = type(self)
        read_time = ("layers", "layer_aggregation") if self.store_all_layers else ()
        fields: dict[str, Any] = keyed_fields(self, exclude=self.read_fields + read_time)
        fields["model"] = identity
        fields.pop("revision", None)
        return structural_key((class_identity(cls), cls._version, fields))

    def _hidden_to_numpy(self, hidden_states: Sequence[Any]) -> np.ndarray:
        """Selected hidden states stacked: ``(layers, batch, tokens, features)`` float32."""
        import torch

        idx = (
            list(range(len(hidden_states)))
            if self.store_all_layers
            else select_layers(hidden_states, self.layers)
        )
        with torch.no_grad():
            return torch.stack([hidden_states[i] for i in idx]).float().cpu().numpy()

    def _aggregate_layers(self, stack: np.ndarray) -> np.ndarray:
        """``(layers, ..., features)`` -> features of the layer choice (no layer axis for one layer).

        With ``store_all_layers`` the layer axis is kept, ``(..., layers, features)``.
        """
        if self.store_all_layers:
            return aggregate_layers(stack, "none")
        if not isinstance(self.layers, tuple):
            return stack[0]
        return aggregate_layers(stack, self.layer_aggregation)

    def _load_model(
        self, loader: Callable[..., Any], processor_loader: Callable[..., Any] | None, tag: str
    ) -> tuple[Any, Any]:
        """This config's ``(model, processor)``, loaded once per process (see :func:`load_model`)."""
        return load_model(
            self.model,
            self.revision,
            device=self.device,
            dtype=self.dtype,
            loader=loader,
            processor_loader=processor_loader,
            tag=tag,
            pretrained=self.pretrained,
            seed=self.seed,
        )

    def read(
        self, segments: Segments, store: Store, *, out_of_bounds: OutOfBounds = "error"
    ) -> Output:
        """The stored features; with ``store_all_layers``, the layers chosen now by ``layers``."""
        out = super().read(segments, store, out_of_bounds=out_of_bounds)
        if not self.store_all_layers:
            return out
        data = out.data  # (batch, layers, features[, time])
        idx = select_layers(range(data.shape[1]), self.layers)
        chosen = data[:, idx]
        if not isinstance(self.layers, tuple):
            chosen = chosen[:, 0]
        elif self.layer_aggregation == "mean":
            chosen = chosen.mean(axis=1)
        elif self.layer_aggregation == "concat":
            chosen = chosen.reshape((len(chosen), -1, *chosen.shape[3:]))
        return Output(
            data=np.ascontiguousarray(chosen, dtype=np.float32), mask=out.mask, keep=out.keep
        )


@config
class HuggingFaceMediaExtractor(HuggingFaceExtractor):
    """A HuggingFace extractor whose items are media files (audio, image, video events).

    Items are keyed by the file's identity (study-relative path, size, mtime), the event's
    ``offset`` and ``duration``, and the model identity.
    """

    def items(self, events: pd.DataFrame) -> list[Item]:
        from .media import media_items

        return media_items(events, self.event_rows(events), self._keys_of)

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        from .media import media_payloads

        return self._keys_of([ident for ident, _ in media_payloads(events, rows)])

    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Each Audio event's part lies in a readable sound file (see
        :func:`~neuralset.extractors.stimulus.media.check_media_events`), then the model checks
        of :meth:`HuggingFaceExtractor.preflight`."""
        from .media import check_media_events

        rows = self.event_rows(events)
        check_media_events(events, rows, self.resolved_event_type, type(self).__name__)
        super().preflight(events, store)
