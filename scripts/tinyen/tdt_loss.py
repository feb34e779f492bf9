"""A vectorised Token-and-Duration Transducer (TDT) loss in plain PyTorch, fast enough for a CPU.

NeMo ships two TDT losses: a numba one that refuses a CPU ("TDT is not yet implemented for
non CUDA computation"), and ``TDTLossPytorch``, a scalar Python triple loop over (batch, t, u)
that hard-codes ``.cuda()`` and takes minutes per batch. This one computes the same forward
variable (Eq. 7 of https://arxiv.org/abs/2304.06795) with one Python step per frame, each step
vectorised over the batch and the label axis, and lets autograd do the backward pass.

The recursion, with log-probabilities ``blank(t,u)``, ``label(t,u)`` (the next label y_{u+1})
and ``dur(t,u,n)`` for the duration ``d_n``::

    alpha(t, u) = LSE_{n: d_n > 0}   alpha(t-d_n, u)   + blank(t-d_n, u)   + dur(t-d_n, u, n)
                  LSE_{n}            alpha(t-d_n, u-1) + label(t-d_n, u-1) + dur(t-d_n, u-1, n)

A label with duration 0 stays on the same frame, so within a frame alpha depends on its own
left neighbour: x_u = b_u (+) (x_{u-1} + c_{u-1}). That linear recurrence in the log semiring
has the closed form x_u = S_u + logcumsumexp(b - S)_u with S_u = c_0 + ... + c_{u-1}, so a
frame costs a few tensor ops, not a loop over u. The loss is -log P(y|x) summed over the
blank arcs that end exactly at the last frame, as in NeMo's reference.
"""
from __future__ import annotations

import torch

#: "log zero". -inf rather than a large finite number: exp() of a large negative float takes a
#: slow path on x86 (measured: 6x slower for the whole loss)
NEG = float("-inf")
#: what alpha holds where no path reaches a cell (durations that skip frames, no same-frame
#: arcs): finite, so its zero gradient is not 0 * exp(-inf + inf) = NaN. With durations 0 and 1
#: every cell is reachable and this never appears past frame 0.
DEAD = -1.0e30


def tdt_log_likelihood(blank_lp: torch.Tensor, emit_lp: torch.Tensor, duration_logp: torch.Tensor,
                       act_lens: torch.Tensor, label_lens: torch.Tensor,
                       durations: list[int]) -> torch.Tensor:
    """log P(labels | acoustics) per utterance.

    ``blank_lp``: (B, T, U+1) log-probability of blank in each state; ``emit_lp``: (B, T, U+1)
    log-probability of the next label (the last state's entry is ignored); ``duration_logp``:
    (B, T, U+1, len(durations)).
    """
    B, T, U1 = blank_lp.shape
    emit_lp = torch.cat([emit_lp[:, :, :-1], blank_lp.new_full((B, T, 1), NEG)], 2)
    # (T, N, B, U1), split per frame once: indexing a slice of one big tensor per step would
    # make autograd allocate a full-size gradient for every slice
    blank_arc = (blank_lp[..., None] + duration_logp).permute(1, 3, 0, 2).unbind(0)
    emit_arc = (emit_lp[..., None] + duration_logp).permute(1, 3, 0, 2).unbind(0)
    zero = [n for n, d in enumerate(durations) if d == 0]
    moves = [(n, d) for n, d in enumerate(durations) if d > 0]

    neg_col = blank_lp.new_full((B, 1), NEG)
    alphas: list[torch.Tensor] = []
    for t in range(T):
        if t == 0:
            base = torch.cat([blank_lp.new_zeros(B, 1), blank_lp.new_full((B, U1 - 1), DEAD)], 1)
        else:
            terms = []
            for n, d in moves:
                if t - d < 0:
                    continue
                prev = alphas[t - d]
                terms.append(prev + blank_arc[t - d][n])
                terms.append(torch.cat([neg_col, prev[:, :-1] + emit_arc[t - d][n][:, :-1]], 1))
            # no arc reaches frame t when every duration overshoots it: unreachable
            base = torch.stack(terms).logsumexp(0) if terms else blank_lp.new_full((B, U1), DEAD)
        if zero:
            c = emit_arc[t][zero[0]][:, :-1]  # (B, U1-1): same-frame label arcs
            s = torch.cat([blank_lp.new_zeros(B, 1), torch.cumsum(c, 1)], 1)
            base = s + torch.logcumsumexp(base - s, 1)
        alphas.append(base)
    alpha = torch.stack(alphas, 1)  # (B, T, U1)

    # terminal: a blank whose duration lands exactly on the last frame
    idx = torch.arange(B, device=blank_lp.device)
    u = label_lens.long()
    finals = []
    for n, d in moves:
        t_from = act_lens.long() - d
        t_safe = t_from.clamp(min=0)
        arc = alpha[idx, t_safe, u] + blank_lp[idx, t_safe, u] + duration_logp[idx, t_safe, u, n]
        finals.append(torch.where(t_from >= 0, arc, blank_lp.new_full((B,), NEG)))
    return torch.stack(finals).logsumexp(0)


class TDTLoss(torch.nn.Module):
    """Drop-in for NeMo's TDT loss on raw joint outputs (B, T, U+1, V+1+len(durations)).

    ``sigma`` is the logit under-normalisation of the TDT paper (NeMo's ``sigma``): it is
    subtracted from every token log-probability. ``reduction``: "none" (per utterance),
    "mean_batch" (the batch mean, NeMo's default for transducers), "mean" (per utterance divided
    by its label length, then averaged), or "sum".
    """

    def __init__(self, blank: int, durations: list[int], sigma: float = 0.0,
                 reduction: str = "mean_batch"):
        super().__init__()
        if min(durations) < 0 or len(set(durations)) != len(durations) or max(durations) < 1:
            raise ValueError(f"durations must be distinct, non-negative, and include one >= 1: {durations}")
        self.blank, self.durations, self.sigma, self.reduction = blank, list(durations), sigma, reduction

    def forward(self, acts: torch.Tensor, labels: torch.Tensor, act_lens: torch.Tensor,
                label_lens: torch.Tensor) -> torch.Tensor:
        n = len(self.durations)
        token_acts = acts[..., :-n]
        B, T, U1, _ = token_acts.shape
        # log_softmax(x)[k] = x[k] - logsumexp(x): only two entries per cell are needed, so the
        # full (B, T, U+1, V+1) log-softmax is never materialised
        lse = torch.logsumexp(token_acts, -1) + self.sigma
        lab = labels.long()[:, : U1 - 1]
        lab = torch.nn.functional.pad(lab, (0, U1 - lab.shape[1]))  # the last state: any id
        emit = torch.gather(token_acts, 3, lab[:, None, :, None].expand(B, T, U1, 1)).squeeze(3)
        duration_logp = torch.log_softmax(acts[..., -n:], -1)
        ll = tdt_log_likelihood(token_acts[..., self.blank] - lse, emit - lse, duration_logp,
                                act_lens, label_lens, self.durations)
        losses = -ll
        if self.reduction == "mean_batch":
            return losses.mean()
        if self.reduction == "mean":
            return (losses / label_lens.clamp(min=1)).mean()
        if self.reduction == "sum":
            return losses.sum()
        return losses
