import math

import torch

from workers.training.loss import (
    beta_for_positions,
    cross_entropy_loss,
    target_logprobs,
    token_constrained_loss,
)


def test_hand_worked_values() -> None:
    """Token 1: delta 0, beta 2   -> -(2/2) log sigmoid(0)   = log 2            = 0.693147
    Token 2: delta 1, beta 0.5 -> -(2/0.5) log sigmoid(0.5) = -4 * -0.474077 = 1.896308
    Token 3 is not supervised. Token-level mean: (0.693147 + 1.896308) / 2 = 1.294728."""
    policy = torch.tensor([-1.0, -1.0, -5.0])
    reference = torch.tensor([-1.0, -2.0, 0.0])
    betas = torch.tensor([2.0, 0.5, 0.1])
    mask = torch.tensor([True, True, False])
    loss, stats = token_constrained_loss(policy, reference, betas, mask)
    assert math.isclose(float(loss), 1.294728, abs_tol=1e-5)
    # weights 2(1 - sigmoid(beta * delta)): 1.0 and 2(1 - 0.622459) = 0.755081
    assert math.isclose(stats["mean_weight"], (1.0 + 0.755081) / 2, abs_tol=1e-5)


def test_gradient_matches_weighted_form() -> None:
    """d loss / d logp_t = -w_t / N with w_t = 2 (1 - sigmoid(beta_t delta_t))."""
    torch.manual_seed(0)
    policy = torch.randn(6, requires_grad=True)
    reference, betas = torch.randn(6), torch.tensor([0.5, 2.0, 2.0, 2.0, 2.0, 0.1])
    mask = torch.ones(6, dtype=torch.bool)
    loss, _ = token_constrained_loss(policy, reference, betas, mask)
    loss.backward()
    weights = 2 * (1 - torch.sigmoid(betas * (policy.detach() - reference)))
    assert torch.allclose(policy.grad, -weights / 6, atol=1e-6)


def test_small_beta_gradient_equals_cross_entropy() -> None:
    """As beta -> 0 the weight tends to 1 everywhere: the gradient is plain SFT's."""
    policy = torch.tensor([-0.5, -3.0, -1.2], requires_grad=True)
    reference = torch.tensor([-2.0, -0.1, -1.2])
    mask = torch.tensor([True, True, True])
    loss, _ = token_constrained_loss(policy, reference, torch.full((3,), 1e-6), mask)
    loss.backward()
    constrained_grad = policy.grad.clone()
    policy.grad = None
    ce, _ = cross_entropy_loss(policy, mask)
    ce.backward()
    assert torch.allclose(constrained_grad, policy.grad, atol=1e-5)


def test_large_beta_stops_pushing_once_above_reference() -> None:
    policy = torch.tensor([0.0], requires_grad=True)
    loss, _ = token_constrained_loss(policy, torch.tensor([-5.0]), torch.tensor([2.0]), torch.tensor([True]))
    loss.backward()
    assert abs(float(policy.grad)) < 1e-3  # 10 nats above the aligned model: almost no gradient


def test_beta_schedule_by_position() -> None:
    positions = torch.tensor([0, 1, 2, 5, 6, 40])
    betas = beta_for_positions(positions, first=[0.5, 2.0, 2.0, 2.0, 2.0], rest=0.1)
    assert torch.allclose(betas, torch.tensor([0.1, 0.5, 2.0, 2.0, 0.1, 0.1]))


def test_target_logprobs_match_log_softmax() -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 7)
    ids = torch.randint(0, 7, (2, 4))
    expected = torch.log_softmax(logits, -1)[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    assert torch.allclose(target_logprobs(logits, ids), expected, atol=1e-6)
