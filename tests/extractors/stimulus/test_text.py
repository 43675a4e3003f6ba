"""HuggingFaceText against direct transformers forward passes (tiny GPT-2/BERT/LLaMA, MiniLM)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from neuralset.config import ConfigError
from neuralset.events import validate_events
from neuralset.events.transforms import AddContext
from neuralset.extractors.base import ExtractorNotPreparedError
from neuralset.extractors.stimulus.hf import ModelNotAvailableError, model_identity
from neuralset.extractors.stimulus.text import HuggingFaceText, word_span
from neuralset.segments import segment_on_triggers
from neuralset.store import Store
from tests.extractors.stimulus import hf_models

WORDS = "the xylophone player jumps over a lazy dog quickly".split()


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    starts = 0.5 + np.arange(len(WORDS)) * 0.3712 + 0.0013  # onsets and offsets off the 100 Hz grid
    raw = pd.DataFrame(
        {"type": "Word", "start": starts, "duration": 0.2345, "timeline": "run-1", "text": WORDS}
    )
    return AddContext()(validate_events(raw))


def direct(
    model_dir, context: str, word: str, layers, layer_agg: str, token_agg: str
) -> np.ndarray:
    """Reference: tokenise the context, find the word's tokens by offsets, forward, select."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    start = context.rindex(word)
    enc = tok(context, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    pos = [i for i, (s, e) in enumerate(offsets) if e > s and s < start + len(word) and e > start]
    with torch.no_grad():
        hidden = model(**enc, output_hidden_states=True).hidden_states
    n = len(hidden)
    chosen = [int(round(x * (n - 1))) if isinstance(x, float) else x % n for x in layers]
    per_layer = []
    for i in chosen:
        tokens = hidden[i][0, pos].numpy()
        per_layer.append(
            {
                "mean": tokens.mean(0),
                "sum": tokens.sum(0),
                "max": tokens.max(0),
                "first": tokens[0],
                "last": tokens[-1],
            }[token_agg]
        )
    stack = np.stack(per_layer)
    if layer_agg == "mean":
        return stack.mean(0)
    if layer_agg == "concat":
        return stack.reshape(-1)
    return stack


@pytest.mark.parametrize(
    ("which", "layers", "layer_agg", "token_agg"),
    [
        ("gpt2", (0.5, -1), "concat", "mean"),
        ("gpt2", (0, 1.0), "mean", "last"),
        ("bert", (1, 2), "none", "first"),
        ("bert", (0.5,), "mean", "mean"),
        ("llama", (0.5, -1), "concat", "mean"),
        ("llama", (0, 1.0), "none", "last"),
        ("gpt2", (0.5, -1), "concat", "sum"),
        ("llama", (1.0,), "mean", "max"),
    ],
)
def test_matches_direct_forward(events, tmp_path, which, layers, layer_agg, token_agg):
    model_dir = getattr(hf_models, f"{which}_dir")()
    ex = HuggingFaceText(
        model=str(model_dir),
        layers=layers,
        layer_aggregation=layer_agg,
        token_aggregation=token_agg,
        output="static",
        aggregation="trigger",
        device="cpu",
        batch_size=4,
    )
    store = Store(tmp_path)
    report = ex.prepare(events, store, progress=False)
    assert report.computed == len(WORDS)
    segments = segment_on_triggers(events, "Word", duration=0.5)
    got = ex.read(segments, store).data
    for i, (text, context) in enumerate(zip(events["text"], events["context"])):
        ref = direct(model_dir, context, text, layers, layer_agg, token_agg)
        np.testing.assert_allclose(got[i], ref, atol=2e-5, rtol=1e-4)


def test_llama_truncation_keeps_bos_and_byte_fallback(events, tmp_path):
    """LLaMA tokenizer: ``<s>`` stays first when the oldest tokens are dropped; a word of
    byte-fallback tokens (runes) is located by their shared character offsets."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model_dir = hf_models.llama_dir()
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    limit = 12
    rune = pd.DataFrame(
        {"type": "Word", "start": [9.0], "duration": 0.2, "timeline": "run-1", "text": ["ᚠᚢᚦ"]}
    )
    both = AddContext()(validate_events(pd.concat([events, rune], ignore_index=True)))
    ex = HuggingFaceText(
        model=str(model_dir), max_tokens=limit, layers=(0, 1.0), layer_aggregation="concat",
        output="static", aggregation="trigger", device="cpu", batch_size=4,
    )  # fmt: skip
    store = Store(tmp_path)
    ex.prepare(both, store, progress=False)
    got = ex.read(segment_on_triggers(both, "Word", duration=0.2), store).data
    truncated = 0
    for i, (text, context) in enumerate(zip(both["text"], both["context"])):
        enc = tok(context, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        assert ids[0] == tok.bos_token_id and offsets[0] == (0, 0)
        if len(ids) > limit:  # reference: <s> + the last limit - 1 tokens
            truncated += 1
            ids, offsets = ids[:1] + ids[1 - limit :], offsets[:1] + offsets[1 - limit :]
        start = context.rindex(text)
        pos = [
            k for k, (s, e) in enumerate(offsets) if e > s and s < start + len(text) and e > start
        ]
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        ref = np.concatenate([hidden[layer][0, pos].numpy().mean(0) for layer in (0, -1)])
        np.testing.assert_allclose(got[i], ref, atol=2e-5, rtol=1e-4)
    assert truncated >= 3
    # the runes are 9 byte tokens sharing their characters' offsets, all kept as the word
    assert len(pos) == 9 and tok.convert_ids_to_tokens([ids[k] for k in pos]) == [
        f"<0x{b:02X}>" for b in "ᚠᚢᚦ".encode()
    ]


def test_multi_token_word_is_located_by_offsets(events):
    from transformers import AutoTokenizer

    ex = HuggingFaceText(model=str(hf_models.gpt2_dir()), device="cpu")
    payloads = [{"text": t, "context": c} for t, c in zip(events["text"], events["context"])]
    _, positions = ex.encode(payloads)
    tok = AutoTokenizer.from_pretrained(hf_models.gpt2_dir())
    assert len(positions[1]) > 1  # "xylophone" is several tokens of the tiny vocabulary
    ids = tok(events["context"][1])["input_ids"]
    assert tok.decode([ids[p] for p in positions[1]]).strip() == "xylophone"
    # the last word of each context is the word itself: its tokens end the sequence
    for k, pos in enumerate(positions):
        n = len(tok(events["context"][k])["input_ids"])
        assert pos[-1] == n - 1


def test_minilm_real_model(events, tmp_path):
    model_dir = hf_models.minilm_dir()
    ex = HuggingFaceText(
        model=str(model_dir), layers=1.0, output="static", aggregation="trigger", device="cpu"
    )
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    got = ex.read(segment_on_triggers(events, "Word", duration=0.5), store).data
    assert got.shape == (len(WORDS), 384)
    for i in (0, 1, 8):
        ref = direct(model_dir, events["context"][i], events["text"][i], (1.0,), "mean", "mean")
        np.testing.assert_allclose(got[i], ref[0] if ref.ndim > 1 else ref, atol=1e-4)


def test_uncontextualized_and_batching_invariance(events, tmp_path):
    model_dir = hf_models.gpt2_dir()
    alone = HuggingFaceText(
        model=str(model_dir), contextualized=False, output="static", device="cpu"
    )
    store = Store(tmp_path)
    alone.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Word", duration=0.1)
    got = alone.replace(aggregation="trigger").read(segments, store).data
    ref = direct(model_dir, "jumps", "jumps", (1.0,), "mean", "mean")
    np.testing.assert_allclose(got[3], ref.reshape(-1), atol=2e-5)
    # padding inside a batch changes nothing: batch of 32 == one at a time
    ctx = HuggingFaceText(
        model=str(model_dir), output="static", aggregation="trigger", device="cpu"
    )
    one, many = Store(tmp_path / "one"), Store(tmp_path / "many")
    ctx.replace(batch_size=1).prepare(events, one, progress=False)
    ctx.replace(batch_size=32).prepare(events, many, progress=False)
    np.testing.assert_allclose(
        ctx.read(segments, one).data, ctx.read(segments, many).data, atol=1e-5
    )


def test_painted_word_starts_and_stops_on_exact_samples(events, tmp_path):
    ex = HuggingFaceText(model=str(hf_models.bert_dir()), frequency=100.0, device="cpu")
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    segments = segment_on_triggers(events, "Word", offset=-0.2, duration=1.0)
    data = ex.read(segments, store).data  # (words, features, 100)
    vectors = ex.replace(output="static", aggregation="trigger").read(segments, store).data
    start, stop = events["start"].to_numpy(), (events["start"] + events["duration"]).to_numpy()
    for i in range(len(WORDS) - 2):
        times = segments.start[i] + np.arange(100) / 100.0
        covered = np.zeros(100, dtype=int) - 1
        for j in range(len(WORDS)):  # the event owning each sample: later ones win
            covered[(times >= start[j] - 1e-9) & (times < stop[j] - 1e-9)] = j
        # word i: from sample ceil((onset - window start) * 100) to its offset, exactly
        on, off = 20, 44  # onset 0.2 s after the window start, offset 0.4345 s after
        np.testing.assert_array_equal(np.flatnonzero(covered == i), np.arange(on, off))
        for s in range(100):
            expect = vectors[covered[s]] if covered[s] >= 0 else np.zeros(vectors.shape[1])
            np.testing.assert_array_equal(data[i, :, s], expect)
    # time_major: the same painting, each word's vector one block per segment in memory
    fast = ex.replace(time_major=True)
    assert fast.prepare_key == ex.prepare_key
    time_first = fast.read(segments, store).data
    np.testing.assert_array_equal(time_first, data)
    assert time_first.transpose(0, 2, 1).flags.c_contiguous and data.flags.c_contiguous


def test_keys_local_folder_hash_and_excluded_fields(tmp_path):
    src = hf_models.gpt2_dir()
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    a = HuggingFaceText(model=str(src), device="cpu", batch_size=2)
    b = HuggingFaceText(model=str(copy), device="cuda", batch_size=64)
    assert a.prepare_key == b.prepare_key  # same content, device and batch size not keyed
    assert model_identity("gpt2", "main") != model_identity("gpt2", "v2")
    assert (
        HuggingFaceText(model="gpt2").prepare_key
        != HuggingFaceText(model="gpt2", revision="abc").prepare_key
    )
    config = copy / "config.json"
    config.write_text(config.read_text().replace('"n_head": 2', '"n_head": 4'))
    assert HuggingFaceText(model=str(copy)).prepare_key != a.prepare_key
    assert a.replace(layers=0.5).prepare_key != a.prepare_key
    assert a.replace(output="static").prepare_key == a.prepare_key  # read-only field


def test_row_keys_are_the_keys_of_each_rows_text_and_context():
    """The factorized row keys equal keying each row's (text, context) one by one: repeated
    words, contexts that repeat across words, missing contexts (None, NaN, absent column),
    a number as text, and rows out of order."""
    from neuralset.hashing import chain_keys, structural_key

    rng = np.random.default_rng(3)
    n = 400
    words = rng.choice(["a", "b", "the", "1", ""], n).tolist()
    contexts = rng.choice(["", "x a", "y b", "the"], n).astype(object)
    words[3:7], contexts[3:7] = ["a"] * 4, [None, np.nan, "", "x a"]  # missing contexts: ""
    words[7:9], contexts[7:9] = [1, "1"], ["y b", "y b"]  # a number: keyed as its text
    events = pd.DataFrame({"type": "Word", "text": words, "context": contexts})
    rows = rng.permutation(n)[:300]
    for ext in (HuggingFaceText(model="gpt2"), HuggingFaceText(model="gpt2", contextualized=False)):
        for table in (events, events.drop(columns="context")):
            texts, ctx = ext._rows_texts(table, rows)
            expected = [chain_keys(ext.prepare_key, structural_key(p)) for p in zip(texts, ctx)]
            assert ext.row_keys(table, rows) == expected
    keys = HuggingFaceText(model="gpt2").row_keys(events, np.arange(n))
    assert keys[3] == keys[4] == keys[5] != keys[6]
    assert keys[7] == keys[8]
    assert len(set(keys)) == len(
        {(str(w), c if isinstance(c, str) else "") for w, c in zip(words, contexts)}
    )
    assert HuggingFaceText(model="gpt2").row_keys(events, np.arange(0)) == []


def test_config_errors():
    with pytest.raises(
        ConfigError, match=r"HuggingFaceText.layers: relative depth 1.5 must be within \[0, 1\]"
    ):
        HuggingFaceText(model="gpt2", layers=1.5)
    with pytest.raises(
        ConfigError, match="HuggingFaceText.model: folder /nonexistent/model does not exist"
    ):
        HuggingFaceText(model="/nonexistent/model")
    with pytest.raises(ConfigError, match="HuggingFaceText.model: give a HuggingFace hub id"):
        HuggingFaceText()
    with pytest.raises(ConfigError, match="HuggingFaceText.token_aggregation: expected one of"):
        HuggingFaceText(model="gpt2", token_aggregation="median")


def test_offline_error_names_the_model(events, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    ex = HuggingFaceText(model="nobody-here/missing-model-xyz", device="cpu")  # no load here
    with pytest.raises(
        ModelNotAvailableError, match=r"'nobody-here/missing-model-xyz' .* HF_HUB_OFFLINE=1 forbids"
    ):
        ex.compute_many(ex.items(events)[:1])


_PREFLIGHT = """
import json, sys, time
import pandas as pd
from neuralset.events import validate_events
from neuralset.extractors.stimulus.hf import ModelNotAvailableError
from neuralset.extractors.stimulus.text import HuggingFaceText
from neuralset.store import Store
events = validate_events(pd.DataFrame({"type": "Word", "start": [1.0, 2.0, 3.0, 4.0],
    "duration": 0.2, "timeline": "a", "text": ["the", "cat", "sat", "down"]}))
t0 = time.monotonic()
try:
    HuggingFaceText(model="gpt2", device="cpu").prepare(events, Store(sys.argv[1]), progress=False)
except ModelNotAvailableError as err:
    print(json.dumps({"error": str(err), "seconds": time.monotonic() - t0}))
else:
    print(json.dumps({"error": None}))
"""


@pytest.mark.parametrize("offline", [False, True])
def test_unavailable_hub_model_fails_at_preflight_in_seconds(tmp_path, offline):
    """Issue 8, case 7: a real hub id, no network, an empty HuggingFace cache. Without
    HF_HUB_OFFLINE the hub's retries took ~2 min; preflight asks once, with a short timeout."""
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), **({"HF_HUB_OFFLINE": "1"} if offline else {}))
    proc = subprocess.run(
        [sys.executable, "-c", _PREFLIGHT, str(tmp_path / "store")],
        env=env, capture_output=True, text=True, timeout=60,  # the bound: well under 2 minutes
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["error"] is None:
        pytest.skip("the HuggingFace hub is reachable from this machine")
    cache = tmp_path / "hf-home" / "hub"
    why = (
        "HF_HUB_OFFLINE=1 forbids downloading it"
        if offline
        else "the hub cannot be reached ("  # then the network error, which depends on the machine
    )
    head = f"HuggingFaceText.model: model 'gpt2' (revision 'main') is not in the local HuggingFace cache and {why}"
    tail = (
        "Provide it in one of these ways: a local folder written by save_pretrained (set `model` "
        f"to that folder); the HuggingFace cache ({cache}): run `hf download gpt2` on a machine "
        "with internet and copy the cache here (or point HF_HOME at it); and on machines without "
        "internet set HF_HUB_OFFLINE=1, so that a missing model fails at once instead of after "
        "the hub's retries."
    )
    assert result["error"].startswith(head) and result["error"].endswith(tail), result["error"]
    assert not (tmp_path / "store").exists()  # nothing was attempted
    print(f"preflight failed in {result['seconds']:.2f} s")


def test_unloadable_model_fails_each_item_once_without_preflight(events, tmp_path, monkeypatch):
    """Straight to the driver (no preflight): the load error is not retried per batch or item."""
    import huggingface_hub.constants

    from neuralset.execution import PrepareError, read_errors, run_prepare

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    ex = HuggingFaceText(model="nobody-here/missing-model-xyz", device="cpu", batch_size=2)
    store = Store(tmp_path)
    with pytest.raises(PrepareError, match=rf"{len(WORDS)} of {len(WORDS)} items failed"):
        run_prepare(ex, events, store, progress=False)
    tracebacks = {e.error for e in read_errors(store)}
    assert len(tracebacks) == 1  # one load attempt, its error given to every item
    assert "ModelNotAvailableError: model 'nobody-here/missing-model-xyz'" in tracebacks.pop()


def test_missing_or_blank_text_fails_at_preflight_naming_the_rows(tmp_path):
    # a missing text was embedded as the string "nan" (under the key of the word "nan"), and
    # a blank word failed in the worker, after loading the model, naming no event
    model = str(hf_models.gpt2_dir())
    store = Store(tmp_path)
    stimuli = validate_events(
        pd.DataFrame(
            {
                "type": "Stimulus",
                "start": [0.0, 1.0, 2.0],
                "duration": 0.5,
                "timeline": "run-1",
                "text": ["the", None, "nan"],
            }
        )
    )
    ex = HuggingFaceText(model=model, event_type="Stimulus", device="cpu")
    with pytest.raises(
        ValueError,
        match=r"^HuggingFaceText: 1 of 3 Stimulus events have no 'text' \(event rows \[1\]\); "
        r"it would be embedded as the string 'nan': fill it, or drop these events first "
        r"\(events.dropna\(subset=\['text'\]\)\)$",
    ):
        ex.prepare(stimuli, store, progress=False)
    words = validate_events(
        pd.DataFrame(
            {
                "type": "Word",
                "start": [0.0, 1.0, 2.0],
                "duration": 0.5,
                "timeline": "run-1",
                "text": ["the", " ", ""],
            }
        )
    )
    with pytest.raises(
        ValueError,
        match=r"^HuggingFaceText: 2 of 3 Word events have a blank 'text' \(event rows \[1, 2\]: "
        r"\[' ', ''\]\); a language model has no token to embed for it: drop these events "
        r"first \(keep events\['text'\].str.strip\(\) != ''\)$",
    ):
        HuggingFaceText(model=model, device="cpu").prepare(words, store, progress=False)
    assert not list(store.keys())  # nothing computed
    kept = words[words["text"].str.strip() != ""]
    assert (
        HuggingFaceText(model=model, device="cpu").prepare(kept, store, progress=False).computed
        == 1
    )


def test_read_before_prepare_and_no_mutation(events, tmp_path):
    before = events.copy(deep=True)
    ex = HuggingFaceText(model=str(hf_models.gpt2_dir()), frequency=10.0, device="cpu")
    with pytest.raises(ExtractorNotPreparedError, match="call extractor.prepare"):
        ex.read(segment_on_triggers(events, "Word", duration=0.5), Store(tmp_path))
    ex.prepare(events, Store(tmp_path), progress=False)
    pd.testing.assert_frame_equal(events, before)


def test_word_span():
    assert word_span("cat", "the cat") == ("the cat", 4, 7)
    assert word_span("cat", "the") == ("the cat", 4, 7)
    assert word_span("cat", "") == ("cat", 0, 3)


def test_import_is_lazy():
    code = (
        "import sys, neuralset.extractors.stimulus;"
        "from neuralset.extractors.stimulus.text import HuggingFaceText; HuggingFaceText(model='gpt2');"
        "print(sorted(m for m in ('torch', 'transformers', 'scipy', 'PIL', 'soundfile') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True
    )
    assert out.stdout.strip() == "[]"


def test_unknown_word_embeds_its_unk_token(tmp_path):
    model_dir = hf_models.bert_dir()  # MiniLM's vocabulary: runes are [UNK]
    raw = pd.DataFrame(
        {
            "type": "Word",
            "start": [0.0, 0.5],
            "duration": 0.2,
            "timeline": "t",
            "text": ["the", "ᚠᚢᚦ"],
        }
    )
    events = AddContext()(validate_events(raw))
    ex = HuggingFaceText(model=str(model_dir), output="static", aggregation="trigger", device="cpu")
    store = Store(tmp_path)
    ex.prepare(events, store, progress=False)
    got = ex.read(segment_on_triggers(events, "Word", duration=0.2), store).data
    np.testing.assert_allclose(
        got[1], direct(model_dir, "the ᚠᚢᚦ", "ᚠᚢᚦ", (1.0,), "mean", "mean"), atol=2e-5
    )
