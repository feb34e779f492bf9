"""tiny-en's training package (scripts/tinyen): grammars, the data plan, a few training steps,
save/restore, streaming, the sample.

Needs espeak-ng (a declared system dependency; scripts/setup.sh installs it): no skip.
"""
from __future__ import annotations

import hashlib
import os
import random
import wave
from collections import Counter

import numpy as np
import pytest

from tests.conftest import REPO, SCRIPTS, load_script, load_tinyen

load_tinyen()
from tinyen import datasets, grammar, heldout, lexicon, scoring, speech  # noqa: E402


def test_the_script_imports_without_nemo():
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, %r); import runpy; "
            "m = runpy.run_path(%r); assert 'main' in m; "
            "assert 'nemo' not in sys.modules and 'torch' not in sys.modules" % (str(SCRIPTS), str(SCRIPTS / "train_tiny_model.py")))
    subprocess.run([sys.executable, "-c", code], check=True)


def test_error_rates_and_dropped_words():
    assert scoring.normalize_text("Hello,  World! It's") == "hello world it's"
    r = scoring.error_rates(["a b c d"], ["a x c"])
    assert r["wer"] == pytest.approx(0.5) and r["words"] == 4
    assert scoring.error_rates(["abc"], ["abd"])["cer"] == pytest.approx(1 / 3)
    d = scoring.dropped_words(" ".join("w%d" % i for i in range(20)),
                              " ".join("w%d" % i for i in range(1, 19) if i != 10))
    assert d == {"start": ["w0"], "middle": ["w10"], "end": ["w19"]}


def test_both_grammars_and_the_handwritten_sentences_stay_in_the_vocabulary():
    vocabulary = set(lexicon.load_words())
    assert lexicon.check_vocabulary(grammar.TRAIN_RULES, vocabulary) == []
    assert lexicon.check_vocabulary(heldout.HELDOUT_RULES, vocabulary) == []
    hand = heldout.handwritten_sentences()
    assert len(hand) >= 80 and len(set(hand)) == len(hand)
    assert {w for s in hand for w in s.split()} <= vocabulary
    rng = random.Random(0)
    for make in (grammar.train_sentence, heldout.heldout_sentence):
        for _ in range(300):
            s = make(rng)
            assert 3 <= len(s.split()) <= 20 and set(s.split()) <= vocabulary, s


def test_articles_follow_the_next_sound():
    assert lexicon.fix_articles("a apple a hour an car a one".split()) == "an apple an hour a car a one".split()


def test_the_training_grammar_covers_the_sentence_types_it_promises():
    rng = random.Random(1)
    sents = [grammar.train_sentence(rng) for _ in range(3000)]
    starts = Counter(s.split()[0] for s in sents)
    assert starts["do"] + starts["did"] + starts["can"] + starts["where"] > 100  # questions
    assert starts["please"] > 50  # commands
    days = set(lexicon.CLASSES["DAY"])
    assert sum(any(w in days for w in s.split()) for s in sents) > 150  # days and times
    numbers = set(lexicon.CLASSES["DIGIT"])
    assert sum(any(w in numbers for w in s.split()) for s in sents) > 150
    lengths = [len(s.split()) for s in sents]
    assert min(lengths) == 3 and max(lengths) >= 15


def test_heldout_sentences_never_occur_inside_training_sentences():
    plan = datasets.build_datasets(600, 60, 40, 2, seed=7)
    assert (len(plan.train), len(plan.heldout_natural), len(plan.heldout_random), len(plan.long)) == (600, 60, 40, 2)
    train_sents = [s for it in plan.train for s in it["texts"]]
    natural = [it["text"] for it in plan.heldout_natural]
    long_sents = [s for it in plan.long for s in it["texts"]]
    reserved = set(natural) | {it["text"] for it in plan.heldout_random} | set(long_sents)
    reserved.add(datasets.sample_sentence(seed=7))
    assert not set(train_sents) & reserved
    for s in train_sents:
        padded = f" {s} "
        assert not any(f" {h} " in padded for h in natural + long_sents), s
    # the hand-written sentences come first in the natural held-out set
    assert natural[:10] == heldout.handwritten_sentences()[:10]
    # mixed: natural (grammar) and random sequences, some items with pauses
    grammar_like = sum(s.split()[0] in ("the", "i", "we", "please", "do", "on") for s in train_sents)
    assert 0.2 < grammar_like / len(train_sents) < 0.8
    assert any(len(it["texts"]) > 1 and it["gaps"] for it in plan.train)
    for it in plan.train + plan.heldout_natural + plan.heldout_random:
        assert it["voice"] in speech.VOICES
        assert 140 <= it["rate"] <= 190 and 30 <= it["pitch"] <= 70
    for it in plan.long:
        assert all(0.4 <= g <= 1.5 for g in it["gaps"]) and len(it["texts"]) >= 5
    again = datasets.build_datasets(600, 60, 40, 2, seed=7)
    assert [it["text"] for it in again.train] == [it["text"] for it in plan.train]
    assert [it["text"] for it in again.long] == [it["text"] for it in plan.long]


def test_spoken_commands_leave_the_rest_of_the_plan_as_it_was():
    """Items that say commands keep their sentences as ``plain_texts`` (the tokenizer's input);
    every other item, the held-out sets and the long dictations are what they are without them,
    and each commanded sentence ends with a command the text pipeline knows."""
    import sys

    sys.path.insert(0, str(REPO))
    from ctrlspeak.text.punctuation import TABLES

    plain = datasets.build_datasets(300, 20, 20, 1)
    said = datasets.build_datasets(300, 20, 20, 1, command_fraction=0.3)
    assert [it["texts"] for it in plain.train] == [it.get("plain_texts", it["texts"]) for it in said.train]
    assert (plain.heldout_natural, plain.heldout_random, plain.long) == \
        (said.heldout_natural, said.heldout_random, said.long)
    commanded = [it for it in said.train if "plain_texts" in it]
    assert 50 < len(commanded) < 130
    phrases = {" ".join(k) for k in TABLES["en"].marks}
    for it in commanded:
        assert it["text"] == " ".join(it["texts"])
        for before, after in zip(it["plain_texts"], it["texts"]):
            assert any(after.endswith(" " + c) for c in datasets.END_COMMANDS)
            left = after
            for c in sorted(phrases, key=len, reverse=True):
                left = left.replace(" " + c, "")
            assert left == before  # only commands were added, nothing else changed
    assert set(datasets.END_COMMANDS + datasets.MID_COMMANDS + datasets.QUOTE_COMMANDS) <= phrases


def test_bundled_sample_is_reproducible(tmp_path):
    wav, txt = datasets.make_sample(tmp_path)
    text = txt.read_text().strip()
    assert 8 <= len(text.split()) <= 10 and text == scoring.normalize_text(text)
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert 3.0 <= w.getnframes() / 16000 <= 6.0
    bundled = REPO / "models" / "data"
    assert (bundled / "sample-en.txt").read_text().strip() == text
    assert (bundled / "sample-en.wav").read_bytes() == wav.read_bytes()


#: measured: all eight exact by step 100 (0.08 nats/token), 10 s on one thread
STEPS_TO_MEMORISE = 120


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A tiny hybrid TDT-CTC streaming model and a few utterances."""
    import torch

    from tinyen import model as tiny_model

    torch.set_num_threads(2)
    tmp = tmp_path_factory.mktemp("tiny")
    plan = datasets.build_datasets(40, 2, 0, 0, seed=3)
    # short single sentences: the transducer loss loops over frames, and this must stay quick
    items = [it for it in plan.train if len(it["texts"]) == 1 and len(it["text"].split()) <= 6][:6]
    audio = speech.synthesize(items + plan.heldout_natural, procs=2)
    texts = [it["text"] for it in items]
    tok = tiny_model.train_tokenizer(sorted(set(texts)), tmp / "tok", vocab_size=40)
    cfg = tiny_model.model_config(tok, d_model=32, n_layers=1, n_heads=2, conv_channels=32,
                                  pred_hidden=32)
    return tiny_model.build_model(cfg), audio, texts, tmp


def test_pad_batch_places_each_utterance_after_its_lead_in_silence():
    """The edge augmentation: the sound starts ``lead`` samples in, ``tail`` zeros follow, the
    length counts both, and the gain scales the sound (zeros stay zeros)."""
    import torch

    from tinyen import train

    a = np.full(5, 16383, dtype=np.int16)
    b = np.ones(3, dtype=np.float32)
    x, xl, y, yl = train.pad_batch([a, b], [[1, 2], [3]], gains=[0.5, 2.0], edges=[(2, 1), (0, 4)])
    assert xl.tolist() == [8, 7] and x.shape == (2, 8) and yl.tolist() == [2, 1]
    assert torch.all(x[0, :2] == 0) and torch.all(x[0, 7:] == 0)
    assert torch.allclose(x[0, 2:7], torch.full((5,), 0.5 * 16383 / 32767))
    assert torch.all(x[1, :3] == 2.0) and torch.all(x[1, 3:] == 0)
    plain = train.pad_batch([a, b])[0]
    assert plain.shape == (2, 5) and torch.all(plain[1, :3] == 1.0)


def test_train_few_steps_loss_falls_and_save_restore_round_trips(small):
    import torch

    from tinyen import model as tiny_model
    from tinyen import train
    from tinyen.evaluate import transcribe_arrays

    model, audio, texts, tmp = small
    assert all(a.dtype == np.int16 and 0.5 * 16000 < len(a) < 16 * 16000 for a in audio)
    assert tiny_model.count_params(model) < 300_000
    res = train.train_model(model, audio[:6], texts, epochs=1, batch_size=6, lr=1e-2, warmup=2,
                            seed=3, max_steps=25, log_every=0)
    losses = res["losses"]
    assert res["steps"] == 25 and all(np.isfinite(losses))
    # one batch seen 25 times: a model that learns at all fits it well below where it started
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses

    out = tmp / "m.nemo"
    cwd = os.getcwd()
    try:
        model.save_to(str(out))
        from nemo.collections.asr.models import ASRModel

        restored = ASRModel.restore_from(str(out), map_location="cpu")
    finally:
        os.chdir(cwd)
    assert type(restored).__name__ == "EncDecHybridRNNTCTCBPEModel"
    model.eval()
    restored.eval()
    x, xl = train.pad_batch(audio[6:])
    with torch.inference_mode():
        a = model.forward(input_signal=x, input_signal_length=xl)[0]
        b = restored.forward(input_signal=x, input_signal_length=xl)[0]
    assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
    for head in ("tdt", "ctc"):
        assert transcribe_arrays(model, audio[6:], head=head) == transcribe_arrays(restored, audio[6:], head=head)

    # --init-from: the saved weights go into a fresh model of the same settings; a model whose
    # tokenizer differs is refused rather than given scrambled labels
    def fresh(tok_dir):
        return tiny_model.build_model(tiny_model.model_config(
            tok_dir, d_model=32, n_layers=1, n_heads=2, conv_channels=32, pred_hidden=32))

    again = fresh(tmp / "tok")
    assert tiny_model.load_weights(again, out)["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    again.eval()
    with torch.inference_mode():
        assert torch.allclose(again.forward(input_signal=x, input_signal_length=xl)[0], a, atol=1e-5)
    other = tiny_model.train_tokenizer(sorted(set(texts))[::-1] + ["zebra quartz"], tmp / "tok2", vocab_size=40)
    with pytest.raises(SystemExit, match="tokenizer differs"):
        tiny_model.load_weights(fresh(other), out)


def test_the_streaming_model_memorises_a_few_utterances(tmp_path):
    """The whole input pipeline (gains, int16 scaling, features, lengths, tokenizer ids, the CTC
    head's blank, the loss) end to end: a model that cannot learn eight utterances by heart has
    a broken pipeline, whatever the full run does. A small cache-aware encoder, CTC head alone,
    as the first training stage runs."""
    import torch

    from tinyen import model as tiny_model
    from tinyen import overfit

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: a second thread only adds contention
    audio, texts = overfit.make_set(8, seed=11)
    tok = tiny_model.train_tokenizer(sorted(set(texts)), tmp_path / "tok", vocab_size=64)
    cfg = tiny_model.model_config(tok, d_model=64, n_layers=2, n_heads=2, conv_channels=16,
                                  pred_hidden=32, ctc_weight=1.0)
    torch.manual_seed(0)
    model = tiny_model.build_model(cfg)
    try:
        history = overfit.overfit(model, audio, texts, steps=STEPS_TO_MEMORISE, lr=3e-3,
                                  batch_size=8, every=STEPS_TO_MEMORISE, log=lambda s: None)
    finally:
        torch.set_num_threads(threads)
    step, nats, exact = history[-1]
    assert nats < 0.5 and exact >= 6, history


def test_intermediate_ctc_reads_the_layer_it_names_and_leaves_no_hook(small):
    """The small model has one layer, so its output is the encoder's: an intermediate CTC on it
    must give the final CTC loss whatever its weight (eval mode: no dropout, no random context)."""
    import torch

    from tinyen import train

    model, audio, texts, _ = small
    y = [model.tokenizer.text_to_ids(t) for t in texts[:3]]
    x, xl, y, yl = train.pad_batch(audio[:3], y)
    model.eval()
    with torch.inference_mode():
        plain = train.compute_loss(model, None, x, xl, y, yl, 1.0)[0]
        inter = train.compute_loss(model, None, x, xl, y, yl, 1.0, inter_ctc=(1, 0.5))[0]
    assert torch.isfinite(plain) and torch.allclose(plain, inter, atol=1e-5)
    assert not model.encoder.layers[0]._forward_hooks


def test_a_killed_run_resumes_and_ends_with_the_same_weights(small, tmp_path):
    import torch

    from tinyen import model as tiny_model
    from tinyen import train

    _, audio, texts, tmp = small
    cfg = tiny_model.model_config(tmp / "tok", d_model=32, n_layers=1, n_heads=2, conv_channels=32,
                                  pred_hidden=32)

    class Killed(Exception):
        pass

    def kill_after_first(epoch):
        if epoch == 1:
            raise Killed

    def run(checkpoint=None, on_epoch=None):
        torch.manual_seed(0)
        m = tiny_model.build_model(cfg)
        train.train_model(m, audio[:6], texts, epochs=3, batch_size=3, warmup=2, seed=5,
                          log_every=0, checkpoint=checkpoint, checkpoint_key="k", on_epoch=on_epoch)
        return m

    straight = run()
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(Killed):
        run(ckpt, kill_after_first)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    resumed = run(ckpt)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name


def test_streaming_encoder_equals_offline_at_each_trained_right_context(small):
    """The point of the cache-aware encoder: chunk by chunk, carrying its caches, it computes
    what a whole-file pass with the same attention context computes."""
    import torch
    from nemo.collections.asr.parts.utils.streaming_utils import CacheAwareStreamingAudioBuffer

    from tinyen.model import ATT_CONTEXTS

    model, audio, _, _ = small
    model.eval()
    signal = np.concatenate(audio[6:8]).astype(np.float32) / 32767.0  # a few chunks even at 1120 ms
    for left, right in ATT_CONTEXTS:
        model.encoder.set_default_att_context_size([left, right])
        with torch.inference_mode():
            x = torch.from_numpy(signal)[None]
            feats, flen = model.preprocessor(input_signal=x, length=torch.tensor([x.shape[1]]))
            offline, olen = model.encoder(audio_signal=feats, length=flen)
            buf = CacheAwareStreamingAudioBuffer(model=model, online_normalization=False,
                                                 pad_and_drop_preencoded=False)
            buf.append_audio(signal)
            ch, tm, ch_len = model.encoder.get_initial_cache_state(batch_size=1)
            pieces = []
            for step, (chunk, chunk_len) in enumerate(iter(buf)):
                out, out_len, ch, tm, ch_len = model.encoder.cache_aware_stream_step(
                    processed_signal=chunk, processed_signal_length=chunk_len,
                    cache_last_channel=ch, cache_last_time=tm, cache_last_channel_len=ch_len,
                    keep_all_outputs=buf.is_buffer_empty(),
                    drop_extra_pre_encoded=0 if step == 0 else model.encoder.streaming_cfg.drop_extra_pre_encoded)
                pieces.append(out[..., :out_len[0]])
            streamed = torch.cat(pieces, -1)
        n = min(streamed.shape[-1], int(olen[0]))
        assert n >= int(olen[0]) - 1 and step >= 2, (right, streamed.shape, olen)
        # the last two frames come from the final, partial chunk, whose subsampling sees the
        # end of the audio differently (differences of ~1e-2): everything before is the same
        torch.testing.assert_close(streamed[..., :n - 2], offline[..., :n - 2], atol=1e-4, rtol=1e-4)
    model.encoder.set_default_att_context_size(ATT_CONTEXTS[0])


def test_eval_script_loads(tmp_path):
    ev = load_script("eval_tiny_model")
    assert hasattr(ev, "main")
