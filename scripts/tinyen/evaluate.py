"""Decoding in-memory arrays for the training figures: whole utterances (TDT or the CTC head),
and cache-aware streaming chunk by chunk through NeMo's ``conformer_stream_step``."""
from __future__ import annotations

import time

import numpy as np

from tinyen.model import ATT_CONTEXTS, CHUNK_MS
from tinyen.scoring import dropped_words, error_rates, normalize_text
from tinyen.speech import SR
from tinyen.train import pad_batch


def _text(h) -> str:
    return normalize_text(h.text if hasattr(h, "text") else str(h))


def transcribe_arrays(model, audios: list[np.ndarray], batch_size: int = 16,
                      head: str = "tdt") -> list[str]:
    """Greedy decoding of 16 kHz arrays, one forward pass per utterance, with the TDT head or
    the auxiliary CTC head."""
    import torch

    model.eval()
    order = sorted(range(len(audios)), key=lambda i: len(audios[i]))
    out = [""] * len(audios)
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            x, xl = (t.to(model.device) for t in pad_batch([audios[i] for i in idx]))
            enc, enc_len = model.forward(input_signal=x, input_signal_length=xl)
            if head == "ctc":
                hyps = model.ctc_decoding.ctc_decoder_predictions_tensor(
                    model.ctc_decoder(encoder_output=enc), decoder_lengths=enc_len)
            else:
                hyps = model.decoding.rnnt_decoder_predictions_tensor(
                    encoder_output=enc, encoded_lengths=enc_len)
            if isinstance(hyps, tuple):
                hyps = hyps[0]
            for i, h in zip(idx, hyps):
                out[i] = _text(h)
    return out


def ctc_nats_per_token(model, audios: list[np.ndarray], texts: list[str],
                       batch_size: int = 16) -> float:
    """The CTC head's loss per target token over ``audios`` in eval mode: the number that
    shows a run leaving (or not) CTC's blank plateau before its transcripts do."""
    import torch

    model.eval()
    total, tokens = 0.0, 0
    with torch.inference_mode():
        for s in range(0, len(audios), batch_size):
            targets = [model.tokenizer.text_to_ids(t) for t in texts[s:s + batch_size]]
            x, xl, y, yl = (t.to(model.device) for t in pad_batch(audios[s:s + batch_size], targets))
            enc, enc_len = model.forward(input_signal=x, input_signal_length=xl)
            log_probs = model.ctc_decoder(encoder_output=enc)
            total += float(torch.nn.functional.ctc_loss(
                log_probs.transpose(0, 1), y, enc_len, yl, blank=model.tokenizer.vocab_size,
                reduction="sum", zero_infinity=True))
            tokens += int(yl.sum())
    return total / max(1, tokens)


def transcribe_streaming(model, audio: np.ndarray, right_context: int) -> str:
    """One utterance through the cache-aware streaming step in chunks of ``right_context + 1``
    encoder frames; the encoder's caches carry the left context from chunk to chunk, so each
    chunk costs only its own audio."""
    import torch
    from nemo.collections.asr.parts.utils.streaming_utils import CacheAwareStreamingAudioBuffer

    model.eval()
    encoder = model.encoder
    encoder.set_default_att_context_size([ATT_CONTEXTS[0][0], right_context])
    try:
        buf = CacheAwareStreamingAudioBuffer(model=model, online_normalization=False,
                                             pad_and_drop_preencoded=False)
        signal = audio.astype(np.float32) / 32767.0 if audio.dtype == np.int16 else audio
        buf.append_audio(signal)
        ch, tm, ch_len = encoder.get_initial_cache_state(batch_size=1)
        hyps = pred = None
        with torch.inference_mode():
            for step, (chunk, chunk_len) in enumerate(iter(buf)):
                pred, texts, ch, tm, ch_len, hyps = model.conformer_stream_step(
                    processed_signal=chunk, processed_signal_length=chunk_len,
                    cache_last_channel=ch, cache_last_time=tm, cache_last_channel_len=ch_len,
                    keep_all_outputs=buf.is_buffer_empty(), previous_hypotheses=hyps,
                    previous_pred_out=pred,
                    drop_extra_pre_encoded=0 if step == 0 else encoder.streaming_cfg.drop_extra_pre_encoded,
                    return_transcription=True)
        return _text(texts[0]) if texts else ""
    finally:
        encoder.set_default_att_context_size(ATT_CONTEXTS[0])


def evaluate(model, sets: dict[str, tuple[list[np.ndarray], list[dict]]], long_audio, long_items,
             streaming_contexts: tuple[int, ...] = (1, 6, 13)) -> dict:
    """Offline WER/CER of each held-out set (TDT and CTC heads), the long dictations with the
    words they drop, and streaming WER at each right context."""
    t0 = time.time()
    res: dict = {}
    for name, (audio, items) in sets.items():
        refs = [it["text"] for it in items]
        hyps = transcribe_arrays(model, audio)
        r = error_rates(refs, hyps)
        r["utterances"] = len(refs)
        r["ctc_head"] = error_rates(refs, transcribe_arrays(model, audio, head="ctc"))
        r["examples"] = [{"ref": a, "hyp": b} for a, b in zip(refs, hyps) if a != b][:10]
        for rc in streaming_contexts:
            s_hyps = [transcribe_streaming(model, a, rc) for a in audio]
            r[f"streaming_{CHUNK_MS[rc]}ms"] = error_rates(refs, s_hyps)
        res[name] = r
    longs = []
    for audio, it in zip(long_audio, long_items):
        hyp = transcribe_arrays(model, [audio], batch_size=1)[0]
        er = error_rates([it["text"]], [hyp])
        longs.append({"seconds": round(len(audio) / SR, 1), "sentences": len(it["texts"]),
                      "wer": er["wer"], "cer": er["cer"], "words": er["words"],
                      "dropped": dropped_words(it["text"], hyp), "ref": it["text"], "hyp": hyp})
    refs = [it["text"] for it in long_items]
    res["long"] = {"utterances": longs, **(error_rates(refs, [u["hyp"] for u in longs]) if longs else {})}
    res["eval_seconds"] = round(time.time() - t0, 1)
    return res
