"""Log-probs stay fp32 under bf16 autocast: the constrained loss compares them with the aligned model's, and a
bf16 log-prob near -10 is only good to about 0.03 nats, more than the deltas the betas act on."""

import torch

from workers.training.loss import target_logprobs


def test_target_logprobs_are_fp32_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    head = torch.nn.Linear(32, 1000)
    hidden = torch.randn(2, 9, 32)
    ids = torch.randint(0, 1000, (2, 9))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(hidden)
        logps = target_logprobs(logits, ids)
    assert logits.dtype == torch.bfloat16 and logps.dtype == torch.float32 and logps.shape == (2, 8)
    # the same figures as outside autocast on the same (bf16) logits: nothing inside is lowered to bf16
    assert torch.equal(logps, target_logprobs(logits, ids))
    exact = torch.log_softmax(logits.double(), dim=-1)[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    assert torch.allclose(logps.double(), exact, atol=1e-5)
    # and close to an fp32 forward pass: only the logits' own bf16 rounding differs
    reference = target_logprobs(head(hidden), ids)
    assert reference.dtype == torch.float32
    assert torch.allclose(logps, reference, atol=0.05), (logps - reference).abs().max()


def test_gradients_reach_bf16_logits_through_the_fp32_log_probs() -> None:
    logits = torch.randn(1, 5, 50, dtype=torch.bfloat16, requires_grad=True)
    ids = torch.randint(0, 50, (1, 5))
    target_logprobs(logits, ids).sum().backward()
    assert logits.grad is not None and logits.grad.dtype == torch.bfloat16
