"""The token-wise constrained objective of Qi et al. 2024 ("Safety Alignment Should Be Made More Than
Just a Few Tokens Deep", https://arxiv.org/abs/2406.05946, eq. 3), as pure tensor maths.

    loss_t = -(2 / beta_t) * log sigmoid(beta_t * (log p_theta(y_t) - log p_aligned(y_t)))

As beta_t -> 0 this is cross-entropy; a large beta_t stops pushing once the model's log-prob is a few nats
above the aligned model's, so the first response tokens (where alignment lives) barely move.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def beta_for_positions(positions: torch.Tensor, first: Sequence[float], rest: float) -> torch.Tensor:
    """Beta per token from its 1-based position in its assistant turn (0 = not supervised, gets `rest`)."""
    table = torch.tensor([rest, *first], dtype=torch.float32, device=positions.device)
    index = torch.where(positions <= len(first), positions, torch.zeros_like(positions))
    return table[index]


def token_constrained_loss(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    betas: torch.Tensor,
    mask: torch.Tensor,
    denominator: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Token-level mean of the constrained loss over supervised tokens.

    Args:
        policy_logps: log p_theta of each target token, any shape.
        reference_logps: log p_aligned of the same tokens (no gradient flows into them).
        betas: beta_t per token, same shape.
        mask: True where the token is supervised.
        denominator: what to divide the summed loss by; default the number of supervised tokens here. Gradient
            accumulation passes the whole step's count so micro-batches add up to one token-level mean. A
            [batch, 1] tensor gives each row its own (tenant rows and recovery rows are averaged apart).
    Returns:
        The scalar loss and detached statistics (mean weight 2(1 - sigmoid(beta * delta)) and mean delta).
    """
    mask_f = mask.to(torch.float32)
    delta = policy_logps.float() - reference_logps.float().detach()
    per_token = -(2.0 / betas) * F.logsigmoid(betas * delta)
    count = mask_f.sum().clamp(min=1.0)
    loss = (per_token * mask_f / (count if denominator is None else denominator)).sum()
    with torch.no_grad():
        weight = 2.0 * (1.0 - torch.sigmoid(betas * delta))
        stats = {
            "mean_weight": float((weight * mask_f).sum() / count),
            "mean_delta": float((delta * mask_f).sum() / count),
        }
    return loss, stats


def cross_entropy_loss(
    policy_logps: torch.Tensor, mask: torch.Tensor, denominator: float | torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Plain SFT: token-level mean negative log-likelihood over supervised tokens."""
    mask_f = mask.to(torch.float32)
    count = mask_f.sum().clamp(min=1.0)
    return -(policy_logps.float() * mask_f / (count if denominator is None else denominator)).sum(), {}


def target_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """log p(input_ids[:, t] | input_ids[:, <t]) for t >= 1, shape [batch, seq - 1], in fp32.

    Gathers the target column from log_softmax so the full [batch, seq, vocab] fp32 tensor lives only once.
    """
    shifted = logits[:, :-1, :].float()
    targets = input_ids[:, 1:].unsqueeze(-1)
    return shifted.gather(-1, targets).squeeze(-1) - torch.logsumexp(shifted, dim=-1)
