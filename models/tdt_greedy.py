"""Greedy TDT decoding for one utterance: a plain loop, the same output as NeMo's greedy_batch.

Worker-only (imports torch). NeMo's ``GreedyBatchedTDTLabelLoopingComputer`` is written for
batches: every step it runs a dozen masked tensor ops (``where``, ``minimum``, ``less``, the
hypothesis bookkeeping) and a host sync per inner loop, which for batch size 1 on a CPU costs
more than the joint and the prediction net themselves (issue 16: about 2.7x onnx-asr's loop on
the Parakeet 0.6B shape). :func:`greedy_tdt` is the same algorithm as NeMo's ``torch_impl`` with
one hypothesis and the bookkeeping in Python ints:

- the joint's encoder projection is computed once for all frames;
- at frame ``t`` the joint of (encoder projection[t], prediction projection) gives token logits
  (vocabulary + blank) and duration logits (the last ``len(durations)`` outputs); greedy picks
  both by argmax;
- blank: ``t`` moves on by the duration, at least 1 (NeMo forces blank's duration 0 to 1);
- a token: it is emitted, the prediction net takes one step on it, ``t`` moves on by the
  duration (0 stays on the frame); after ``max_symbols`` tokens on one frame ``t`` moves on by 1.

The joint is the raw linear output: NeMo applies ``log_softmax`` on CPU, which subtracts one
constant from the whole row and does not change the argmax (up to a rounding tie).
Dropout is skipped: this is inference, the model is in eval mode. What is not a plain
LSTM prediction net + linear joint without adapters or fusion models (LM, boosting) is refused
by :func:`supports`, and its caller keeps NeMo's decoding for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

#: NeMo's default ``max_symbols`` for greedy decoding when the config has none
DEFAULT_MAX_SYMBOLS = 10

_ACTIVATIONS = {torch.nn.ReLU: torch.relu_, torch.nn.Tanh: torch.tanh_, torch.nn.Sigmoid: torch.sigmoid_}


@dataclass(frozen=True)
class TdtParams:
    """What the loop needs of a model's decoding config."""

    blank: int
    durations: tuple[int, ...]
    #: tokens one frame may emit before time is forced on; None: no cap (NeMo's too)
    max_symbols: int | None


def params_of(model: Any) -> TdtParams:
    """Read blank id, durations and the max-symbols cap from the model's own greedy decoder
    (what ``model.decoding`` runs), falling back to ``model.cfg.decoding``."""
    inner = getattr(getattr(model, "decoding", None), "decoding", None)
    cfg = model.cfg.get("decoding", {}) if hasattr(model.cfg, "get") else {}
    durations = getattr(inner, "durations", None)
    if durations is None:
        durations = cfg.get("durations") or model.cfg.get("model_defaults", {}).get("tdt_durations")
    if not durations:
        raise ValueError("not a TDT model: no durations in its decoding config")
    if inner is not None and hasattr(inner, "max_symbols"):
        max_symbols = inner.max_symbols
    else:
        greedy = cfg.get("greedy", {})  # NeMo reads both names, the first one set wins
        max_symbols = greedy.get("max_symbols") or greedy.get("max_symbols_per_step") or DEFAULT_MAX_SYMBOLS
    blank = getattr(inner, "_blank_index", None)
    if blank is None:
        blank = model.decoder.blank_idx
    durations = tuple(int(d) for d in (durations.tolist() if isinstance(durations, torch.Tensor) else durations))
    return TdtParams(blank=int(blank), durations=durations,
                     max_symbols=None if max_symbols is None else int(max_symbols))


def _joint_parts(joint: Any) -> tuple[Any, torch.nn.Linear] | None:
    """(in-place activation, output linear) of ``joint.joint_net``, or None if it is not the
    plain [activation, (dropout), linear] of NeMo's RNNTJoint."""
    layers = list(getattr(joint, "joint_net", []))
    if len(layers) not in (2, 3) or type(layers[-1]) is not torch.nn.Linear:
        return None
    act = _ACTIVATIONS.get(type(layers[0]))
    if act is None or (len(layers) == 3 and type(layers[1]) is not torch.nn.Dropout):
        return None
    return act, layers[-1]


def supports(model: Any) -> str | None:
    """None if :func:`greedy_tdt` gives NeMo's greedy output for this model; else why not."""
    from nemo.collections.asr.modules.rnnt import RNNTDecoder, RNNTJoint

    decoder, joint = getattr(model, "decoder", None), getattr(model, "joint", None)
    if type(decoder) is not RNNTDecoder or type(joint) is not RNNTJoint:
        return "not an RNNTDecoder + RNNTJoint"
    if not decoder.blank_as_pad:
        return "the prediction net has no blank-as-pad embedding (NeMo decodes it another way)"
    if decoder.is_adapter_available() or joint.is_adapter_available():
        return "adapters are on"
    rnn = decoder.prediction["dec_rnn"]
    lstm = getattr(rnn, "lstm", None)
    if type(lstm) is not torch.nn.LSTM or lstm.proj_size or lstm.batch_first:
        return "the prediction net is not a plain LSTM"
    if _joint_parts(joint) is None:
        return "the joint is not [activation, dropout, linear]"
    inner = getattr(getattr(model, "decoding", None), "decoding", None)
    if type(inner).__name__ != "GreedyBatchedTDTInfer" or getattr(inner, "decoding_computer", None) is None:
        return f"the decoding strategy is not greedy_batch TDT label looping ({type(inner).__name__})"
    if inner.decoding_computer.has_fusion_models():
        return "a fusion model (LM or boosting tree) is on"
    try:
        params = params_of(model)
    except ValueError as exc:
        return str(exc)
    if joint.num_extra_outputs != len(params.durations):
        return "the joint's extra outputs are not the durations"
    return None


@torch.inference_mode()
def greedy_tdt(model: Any, encoded: torch.Tensor, length: int, params: TdtParams | None = None) -> list[int]:
    """Token ids of the greedy TDT decode of ``encoded`` ([1, D, T], the encoder's output)
    up to frame ``length``. Blank never appears in the result."""
    if encoded.dim() != 3 or encoded.shape[0] != 1:
        raise ValueError(f"encoded must be [1, D, T], got {tuple(encoded.shape)}")
    params = params or params_of(model)
    decoder, joint = model.decoder, model.joint
    act, out_linear = _joint_parts(joint)
    frames = min(int(length), encoded.shape[-1])
    if frames <= 0:
        return []
    # the whole [1, T, D] as NeMo projects it (same shape: the same kernel, the same numbers)
    enc_proj = joint.project_encoder(encoded.transpose(1, 2))[0]
    rows = enc_proj.unbind(0)  # per-frame [H] views, sliced once
    num_tokens = out_linear.out_features - len(params.durations)
    durations, blank, cap = params.durations, params.blank, params.max_symbols

    embed_weight = decoder.prediction["embed"].weight
    lstm = decoder.prediction["dec_rnn"].lstm
    pred_w, pred_b = joint.pred.weight.t(), joint.pred.bias
    out_w, out_b = out_linear.weight.t(), out_linear.bias
    ref = enc_proj
    hidden = torch.empty((1, enc_proj.shape[-1]), dtype=ref.dtype, device=ref.device)
    logits = torch.empty((1, out_linear.out_features), dtype=ref.dtype, device=ref.device)
    token_logits, duration_logits = logits[0, :num_tokens], logits[0, num_tokens:]
    pred_proj = torch.empty_like(hidden)
    layers, size = lstm.num_layers * (2 if lstm.bidirectional else 1), lstm.hidden_size
    state = (torch.zeros((layers, 1, size), dtype=ref.dtype, device=ref.device),
             torch.zeros((layers, 1, size), dtype=ref.dtype, device=ref.device))

    def predict(label: int) -> None:
        nonlocal state
        out, state = lstm(embed_weight[label:label + 1].unsqueeze(0), state)
        torch.addmm(pred_b, out[0], pred_w, out=pred_proj)

    predict(blank)  # the start symbol is blank, as NeMo's _SOS
    tokens: list[int] = []
    t, last_t, run = 0, -1, 0  # NeMo's last_nb_timestamp / last_nb_timestamp_lasts
    while t < frames:
        torch.add(rows[t], pred_proj, out=hidden)
        act(hidden)
        torch.addmm(out_b, hidden, out_w, out=logits)
        label = int(token_logits.argmax())
        duration = durations[int(duration_logits.argmax())]
        if label == blank:
            t += duration or 1
            continue
        tokens.append(label)
        run = run + 1 if t == last_t else 1
        last_t = t
        t += duration
        if t >= frames:
            break
        predict(label)
        if cap is not None and run >= cap and t == last_t:
            t += 1
    return tokens


def tokens_to_text(model: Any, tokens: list[int]) -> str:
    """The text NeMo's RNNT decoding makes of these ids (its own detokeniser and punctuation
    handling)."""
    decoding = model.decoding
    if hasattr(decoding, "decode_tokens_to_str_with_strip_punctuation"):
        return decoding.decode_tokens_to_str_with_strip_punctuation(tokens)
    return decoding.decode_tokens_to_str(tokens)


def greedy_tdt_text(model: Any, encoded: torch.Tensor, length: int, params: TdtParams | None = None) -> str:
    return tokens_to_text(model, greedy_tdt(model, encoded, length, params))
