"""Dynamic int8 encoder: ``nn.Linear`` weights stored as int8, activations quantised per call.

Worker-only (imports torch). CPU only: PyTorch's dynamic quantised kernels are fbgemm/qnnpack.
Measured on the 0.6B Parakeet shape, 2-core CPU: the encoder runs in about 0.25-0.3x the time
(``scripts/bench_transcribe.py --quantize int8``); on tiny-en v1, 5 of 404 held-out transcripts
change and the WER stays 4.90 % (``scripts/eval_tiny_model.py --compare quantize=int8``).
"""
from __future__ import annotations

import functools
from typing import Any

import torch
from torch.ao.nn.quantized import dynamic as qdynamic


def _linears(module: torch.nn.Module) -> list[tuple[torch.nn.Module, str, torch.nn.Linear]]:
    # exactly nn.Linear, as quantize_dynamic's mapping matches: subclasses keep their own forward
    return [(parent, name, child) for parent in module.modules()
            for name, child in parent.named_children() if type(child) is torch.nn.Linear]


def quantize_encoder(model: Any) -> int:
    """Quantise the encoder's ``nn.Linear`` layers in place; returns how many were replaced."""
    before = len(_linears(model.encoder))
    torch.ao.quantization.quantize_dynamic(model.encoder, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return before - len(_linears(model.encoder))


#: the state-dict key suffix under which a dynamic int8 Linear keeps (int8 weight, bias)
PACKED = "._packed_params._packed_params"


def prepack(state: dict[str, Any]) -> dict[str, Any]:
    """Pack a quantised state dict's (weight, bias) pairs into fbgemm's layout, in place.

    This is most of an int8 load (about 1.5 s for the 0.6B shape); the weights cache runs it on
    its loader thread while the model is being built (the op holds no GIL).
    """
    for key, value in state.items():
        if key.endswith(PACKED) and isinstance(value, tuple):
            state[key] = torch.ops.quantized.linear_prepack(*value)
    return state


def empty_int8_encoder(model: Any) -> int:
    """Swap the encoder's ``nn.Linear`` layers for empty int8 ones, to be filled by
    :func:`load_int8_state` from a quantised model's state dict (the weights cache).

    Nothing is computed from the float weights, which are never touched (they were built
    without initialisation), so their memory is never paged in. The shells are built 1x1 and
    then given their real shape: building them full size packs a zero matrix per layer (2.5 s
    for the 0.6B shape). Returns how many were swapped.
    """
    swapped = _linears(model.encoder)
    for parent, name, linear in swapped:
        shell = qdynamic.Linear(1, 1, bias_=linear.bias is not None, dtype=torch.qint8)
        shell.in_features, shell.out_features = linear.in_features, linear.out_features
        setattr(parent, name, shell)
    return len(swapped)


def load_int8_state(model: Any, state: dict[str, Any], strict: bool = True) -> None:
    """Load a quantised model's state dict (after :func:`empty_int8_encoder`), assigning
    tensors so that memory-mapped ones stay mapped. The int8 layers take their weights
    already packed by :func:`prepack` as they are, or (weight, bias) pairs packed here.
    """
    hooked = [m._packed_params for m in model.modules() if isinstance(m, qdynamic.Linear)]
    for params in hooked:  # an instance attribute shadows the method for this load only
        params._load_from_state_dict = functools.partial(_load_packed, params)
    try:
        model.load_state_dict(state, strict=strict, assign=True)
    finally:
        for params in hooked:
            del params._load_from_state_dict


def _load_packed(params: Any, state_dict: dict[str, Any], prefix: str, local_metadata: Any, strict: bool,
                 missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str]) -> None:
    key = prefix + "_packed_params"
    if key not in state_dict:
        missing_keys.append(key)
        return
    dtype = state_dict.get(prefix + "dtype", torch.qint8)
    if dtype != torch.qint8:
        error_msgs.append(f"{key}: expected qint8 weights, found {dtype}")
        return
    value = state_dict[key]
    if isinstance(value, tuple):
        params.set_weight_bias(*value)
    else:
        params._packed_params = value
