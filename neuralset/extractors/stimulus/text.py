"""Word (or sentence) embeddings from HuggingFace language models, in their context.

Registered YAML kind: ``hf_text``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from ...config import config, register
from ...store import Store
from ..base import Computed, Item
from .hf import HuggingFaceExtractor

__all__ = ["HuggingFaceText", "word_span", "check_texts"]


def check_texts(
    owner: str, events: pd.DataFrame, rows: np.ndarray, column: str, *, blank_ok: bool
) -> None:
    """Raise, before any work, when event ``rows`` lack the text an extractor embeds.

    A missing value (NaN, None) would otherwise be embedded as the string ``"nan"``; a blank
    one (``blank_ok=False``) has no token for a language model to embed.

    Raises
    ------
    ValueError
        Naming the extractor, the column, the event rows and the fix.
    """
    etype = events["type"].to_numpy()[rows[0]] if len(rows) else ""
    if column not in events.columns:
        if len(rows):
            raise ValueError(
                f"{owner}: the events table has no {column!r} column for its {len(rows)} {etype} "
                f"events; add it (the text to embed), or choose other events with event_type"
            )
        return
    values = events[column].to_numpy()[rows]
    missing = np.flatnonzero(pd.isna(values))
    if len(missing):
        raise ValueError(
            f"{owner}: {len(missing)} of {len(rows)} {etype} events have no {column!r} (event "
            f"rows {rows[missing[:3]].tolist()}); it would be embedded as the string 'nan': fill "
            f"it, or drop these events first (events.dropna(subset=[{column!r}]))"
        )
    if not blank_ok:
        blank = np.flatnonzero([not str(v).strip() for v in values])
        if len(blank):
            raise ValueError(
                f"{owner}: {len(blank)} of {len(rows)} {etype} events have a blank {column!r} "
                f"(event rows {rows[blank[:3]].tolist()}: {values[blank[:3]].tolist()}); a "
                "language model has no token to embed for it: drop these events first "
                f"(keep events[{column!r}].str.strip() != '')"
            )


def word_span(text: str, context: str) -> tuple[str, int, int]:
    """The string to embed and the character span of the word in it.

    The context transform (:class:`~neuralset.events.transforms.AddContext`) writes the
    preceding words *followed by the word itself*; the word is then the last occurrence of its
    text in the context (trailing spaces ignored). A context that does not end with the word is
    taken as preceding text and the word is appended after a space. An empty context embeds the
    word alone.
    """
    text = str(text).strip()
    context = str(context or "").rstrip()
    if not context:
        return text, 0, len(text)
    if context.endswith(text):
        return context, len(context) - len(text), len(context)
    full = f"{context} {text}"
    return full, len(full) - len(text), len(full)


@register("hf_text")
@config
class HuggingFaceText(HuggingFaceExtractor):
    """Embedding of each word from a causal or masked language model.

    The word is located among the tokens of its context through the tokenizer's character
    offsets (``return_offsets_mapping``): its tokens are those whose character span overlaps the
    word's. When the context is longer than the model accepts, the oldest tokens are dropped.

    Parameters
    ----------
    contextualized
        Embed each word within its ``context`` column (see :func:`word_span`); otherwise alone.
    token_aggregation
        How the word's tokens become one vector: ``"mean"``, ``"sum"``, ``"max"`` (per
        feature), ``"first"`` or ``"last"``.
    max_tokens
        Longest token sequence given to the model (``None``: the model's maximum).

    Examples
    --------
    >>> HuggingFaceText(model="gpt2", layers=0.5, frequency=100.0).prepare_key  # doctest: +SKIP
    """

    default_event_type: ClassVar[str] = "Word"
    stores_vectors: ClassVar[bool] = True

    contextualized: bool = True
    token_aggregation: Literal["mean", "sum", "max", "first", "last"] = "mean"
    max_tokens: int | None = None

    # -- prepare ------------------------------------------------------------------------
    def preflight(self, events: pd.DataFrame, store: Store) -> None:
        """Before any work: every event has a text that is not blank (:func:`check_texts`),
        and the model can be loaded (see :meth:`HuggingFaceExtractor.preflight`)."""
        check_texts("HuggingFaceText", events, self.event_rows(events), "text", blank_ok=False)
        super().preflight(events, store)

    def _rows_texts(self, events: pd.DataFrame, rows: np.ndarray) -> tuple[list[str], list[str]]:
        """Text and context of each row (context ``""`` when missing or not contextualized)."""
        texts = [str(t) for t in events["text"].to_numpy()[rows].tolist()]
        if not (self.contextualized and "context" in events.columns):
            return texts, [""] * len(texts)
        contexts = events["context"].to_numpy()[rows].tolist()
        return texts, [str(c) if isinstance(c, str) else "" for c in contexts]

    def items(self, events: pd.DataFrame) -> list[Item]:
        texts, contexts = self._rows_texts(events, self.event_rows(events))
        keys = self._keys_of(list(zip(texts, contexts)))
        return [
            Item(key=k, label=t, payload={"text": t, "context": c})
            for k, t, c in zip(keys, texts, contexts)
        ]

    def row_keys(self, events: pd.DataFrame, rows: np.ndarray) -> list[str]:
        """The key of each row's ``(text, context)``, each distinct pair keyed once.

        The distinct pairs are found by factorizing texts and contexts (no Python loop over the
        rows), and no tuple is made per row, only per distinct pair: thousands of new
        containers would set off Python's full garbage collection (tens of ms with torch or
        jax loaded) before the first batch.
        """
        texts, contexts = self._rows_texts(events, rows)
        if not texts:
            return []
        text_codes = pd.factorize(np.asarray(texts, dtype=object))[0]
        context_codes, distinct_contexts = pd.factorize(np.asarray(contexts, dtype=object))
        pair_codes = text_codes.astype(np.int64) * len(distinct_contexts) + context_codes
        _, first, inverse = np.unique(pair_codes, return_index=True, return_inverse=True)
        keys = self._keys_of([(texts[i], contexts[i]) for i in first.tolist()])
        return np.asarray(keys, dtype=object)[inverse].tolist()  # type: ignore[no-any-return]

    def _model(self) -> tuple[Any, Any]:
        from transformers import AutoModel, AutoTokenizer

        return self._load_model(AutoModel.from_pretrained, AutoTokenizer.from_pretrained, "text")

    def encode(self, payloads: Sequence[dict[str, str]]) -> tuple[dict[str, Any], list[list[int]]]:
        """Tokenize a batch; return the model inputs and each word's token positions."""
        _, tok = self._model()
        strings, spans = [], []
        for p in payloads:
            full, a, b = word_span(p["text"], p["context"] if self.contextualized else "")
            strings.append(full)
            spans.append((a, b))
        limit = self.max_tokens or _max_positions(self._model()[0], tok)
        enc = tok(
            strings,
            return_offsets_mapping=True,
            add_special_tokens=True,
            truncation=False,
        )
        ids_list, positions = [], []
        for k, (ids, offsets) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
            a, b = spans[k]
            special = set(tok.all_special_ids)
            n_lead = 0
            while (
                n_lead < len(ids)
                and ids[n_lead] in special
                and offsets[n_lead][1] <= offsets[n_lead][0]
            ):
                n_lead += 1
            if len(ids) > limit:  # drop the oldest tokens after the leading special ones
                cut = len(ids) - limit
                ids = ids[:n_lead] + ids[n_lead + cut :]
                offsets = offsets[:n_lead] + offsets[n_lead + cut :]
            # special tokens added by the tokenizer have empty spans; an unknown word's [UNK] does not
            pos = [i for i, (s, e) in enumerate(offsets) if e > s and s < b and e > a]
            if not pos:
                raise ValueError(f"word {payloads[k]['text']!r} has no token in {strings[k]!r}")
            ids_list.append(list(ids))
            positions.append(pos)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        width = max(len(i) for i in ids_list)
        input_ids = np.full((len(ids_list), width), pad, dtype=np.int64)
        mask = np.zeros((len(ids_list), width), dtype=np.int64)
        for k, ids in enumerate(ids_list):
            input_ids[k, : len(ids)] = ids
            mask[k, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}, positions

    def compute_many(self, items: Sequence[Item]) -> list[Computed]:
        import torch

        model, _ = self._model()
        inputs, positions = self.encode([i.payload for i in items])
        device = next(model.parameters()).device
        with torch.no_grad():
            out = model(
                **{k: torch.as_tensor(v, device=device) for k, v in inputs.items()},
                output_hidden_states=True,
            )
        stack = self._hidden_to_numpy(out.hidden_states)  # (layers, batch, tokens, features)
        results = []
        for k, pos in enumerate(positions):
            tokens = stack[:, k, pos]  # (layers, n_tokens, features)
            if self.token_aggregation == "mean":
                vec = tokens.mean(axis=1)
            elif self.token_aggregation == "sum":
                vec = tokens.sum(axis=1)
            elif self.token_aggregation == "max":
                vec = tokens.max(axis=1)
            elif self.token_aggregation == "first":
                vec = tokens[:, 0]
            else:
                vec = tokens[:, -1]
            results.append(
                Computed(value=np.ascontiguousarray(self._aggregate_layers(vec), dtype=np.float32))
            )
        return results


def _max_positions(model: Any, tok: Any) -> int:
    cfg = model.config
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tok, "model_max_length", 0)
    return int(limit) if 0 < limit < 1_000_000 else 512
