"""Rewards, advantage estimators and the loss registry on a tiny random backbone."""
import numpy as np
import pytest
import torch

from wmsd_ray.algorithms import (
    ADVANTAGES,
    LOSSES,
    LossContext,
    anchor_targets,
    credit_accepted_only,
    distill_reward,
    group_advantages,
    rows_with_signal,
    total_loss,
)
from wmsd_ray.models.lora import add_lora, lora_parameters
from wmsd_ray.models.sampling import initial_noise, sde_sample
from wmsd_ray.rollouts import TrainBatch


def test_group_advantages_are_centred_scaled_and_clipped():
    r = np.array([1.0, 2.0, 3.0, 10.0])
    a = group_advantages(r, "grpo", 1e-4, 5.0)
    assert abs(a.mean()) < 1e-6 and a.argmax() == 3
    assert np.abs(group_advantages(np.array([0.0, 0, 0, 100]), "grpo", 1e-4, 1.0)).max() <= 1.0
    assert np.allclose(group_advantages(np.ones(8), "grpo", 1e-4, 5.0), 0)  # equal rewards: no signal
    loo = group_advantages(r, "rloo", 1e-4, 100.0)
    assert np.isclose(loo[0], 1.0 - (2 + 3 + 10) / 3)
    assert set(ADVANTAGES) >= {"grpo", "mean", "rloo"}
    with pytest.raises(KeyError, match="unknown advantage"):
        group_advantages(r, "nope", 1e-4, 5.0)


def test_only_accepted_samples_keep_positive_credit():
    # rewards: two near-misses score above the group mean but the judge rejected them
    adv = group_advantages(np.array([3.5, 1.0, 1.0, -2.0, -2.0]), "grpo", 1e-4, 5.0)
    accepted = np.array([True, False, False, False, False])
    out = credit_accepted_only(adv, accepted)
    assert adv[1] > 0 and out[1] == 0 and out[2] == 0  # above average but broken: no credit
    assert out[0] == adv[0] > 0  # the accepted sample keeps its credit
    assert np.array_equal(out[3:], adv[3:])  # negatives untouched (the loss decides what to do with them)


def test_distill_reward_is_zero_for_equal_velocities_and_weighted_by_step():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 2, 1, 2, 2, 2)).astype(np.float32)
    mask = np.ones((1, 2, 1, 1), np.float32)
    sigmas = np.array([1.0, 0.5, 0.2, 0.0])
    assert np.allclose(distill_reward(v, v, sigmas, mask), 0)
    t = v.copy()
    t[0, 0] += 1.0  # sample 0 differs by 1 everywhere at the first step (|dsigma| = 0.5)
    r = distill_reward(v, t, sigmas, mask)
    assert np.isclose(r[0], -0.5) and np.isclose(r[1], 0)


@pytest.fixture(scope="module")
def executor(tiny_backbone_factory):
    bb = tiny_backbone_factory()
    add_lora(bb, bb.cfg.lora)
    return bb


def _executor_batch(bb, tasks, images, seed=0, eta=0.7, group=2):
    cond = bb.condition(images, tasks).repeat(group)
    x = initial_noise(bb, cond, torch.Generator().manual_seed(seed), group_size=group)
    traj = sde_sample(bb, cond, x, torch.Generator().manual_seed(seed + 1), eta)
    n = traj.final.shape[0]
    rep = lambda xs: [t for t in xs for _ in range(group)]  # noqa: E731
    return TrainBatch(update=0, kind="executor", images=np.repeat(images, group, 0), tasks=rep(tasks),
                      solutions=rep(tasks), x0=traj.final.numpy(), advantages=np.linspace(-1, 1, n).astype(np.float32),
                      versions=np.zeros(n, np.int64), sigmas=traj.sigmas.numpy(), eta=eta,
                      latents=traj.latents.numpy(), log_probs=traj.log_probs.numpy(), seed=3)


def test_flow_grpo_ratio_is_one_before_any_update_and_moves_after(executor, tiny_images):
    bb = executor
    batch = _executor_batch(bb, ["[red circle]: go to the top-left corner", "[blue square]: go to the centre"], tiny_images[:2])
    ctx = LossContext(bb, batch, torch.Generator().manual_seed(0), grpo_timesteps=3)
    loss, m = LOSSES["flow_grpo"](ctx)
    assert abs(m["ratio_first"] - 1) < 1e-4 and m["ratio_max_dev"] < 1e-4
    opt = torch.optim.SGD(lora_parameters(bb), lr=1.0)
    for _ in range(3):
        opt.zero_grad()
        LOSSES["flow_grpo"](LossContext(bb, batch, torch.Generator().manual_seed(0), grpo_clip=10.0))[0].backward()
        opt.step()
    _, m2 = LOSSES["flow_grpo"](LossContext(bb, batch, torch.Generator().manual_seed(0)))
    assert m2["ratio_max_dev"] > 1e-4  # the policy moved, so the stored log-probs are now off-policy


def test_anchor_vanishes_when_student_equals_teacher_and_total_loss_flags_nan(tiny_backbone_factory, tiny_images):
    bb = tiny_backbone_factory()
    add_lora(bb, bb.cfg.lora)  # B = 0: the Executor starts exactly as the Demonstrator
    same = ["[red circle]: go to the top-left corner"] * 2
    batch = TrainBatch(0, "demonstrator", tiny_images[:2], same, same, np.zeros((2, *bb.state_shape(1)[1:]), np.float32),
                       np.ones(2, np.float32), np.full(2, -1), np.zeros(0, np.float32), seed=1)
    loss, m = total_loss(LossContext(bb, batch, torch.Generator().manual_seed(0)), {"anchor": 1.0})
    assert float(loss.detach()) < 1e-10
    loss, m = total_loss(LossContext(bb, batch, torch.Generator().manual_seed(0)),
                         {"off_policy_distill": 1.0, "awm": 0.5, "on_policy_distill": 0.0})
    assert torch.isfinite(loss) and "loss/awm" in m and "loss/on_policy_distill" not in m
    batch.x0[:] = np.nan  # a corrupted batch, injected from outside the code under test
    assert not torch.isfinite(total_loss(LossContext(bb, batch, torch.Generator()), {"awm": 1.0})[0])
    with pytest.raises(KeyError, match="unknown loss"):
        total_loss(LossContext(bb, batch, torch.Generator()), {"ppo": 1.0})


def test_rows_with_signal_follows_what_each_loss_uses():
    adv = np.array([1.5, 0.0, -0.7], np.float32)
    assert rows_with_signal(adv, {"awm": 1.0, "anchor": 0.01}, 0.0, 0.0).tolist() == [True, False, False]
    assert rows_with_signal(adv, {"awm": 1.0}, 0.5, 0.0).tolist() == [True, False, True]  # negatives pushed away
    assert rows_with_signal(adv, {"flow_grpo": 1.0}, 0.0, 0.0).tolist() == [True, False, True]
    assert rows_with_signal(adv, {"flow_grpo": 1.0}, 0.0, 0.1).all()  # the KL term uses every row
    assert rows_with_signal(adv, {"awm": 1.0, "on_policy_distill": 1.0}, 0.0, 0.0).all()


def test_on_policy_distill_uses_the_executor_rows_of_a_batch_with_demonstration_rows(executor, tiny_images):
    """Executor rows come first and only they have a trajectory; demonstration rows after them are left out."""
    bb = executor
    tasks = ["[red circle]: go to the top-left corner", "[blue square]: go to the centre"]
    pol = _executor_batch(bb, tasks, tiny_images[:2])
    n = pol.size
    mixed = TrainBatch(update=0, kind="executor", images=np.concatenate([pol.images, tiny_images[:2]]),
                       tasks=pol.tasks + tasks, solutions=pol.solutions + tasks,
                       x0=np.concatenate([pol.x0, np.zeros_like(pol.x0[:2])]),
                       advantages=np.ones(n + 2, np.float32), versions=np.zeros(n + 2, np.int64), sigmas=pol.sigmas,
                       eta=pol.eta, latents=pol.latents, log_probs=pol.log_probs, seed=3)
    alone, _ = LOSSES["on_policy_distill"](LossContext(bb, pol, torch.Generator().manual_seed(4)))
    both, m = LOSSES["on_policy_distill"](LossContext(bb, mixed, torch.Generator().manual_seed(4)))
    assert torch.isfinite(both) and float(both.detach()) > 0
    assert torch.allclose(alone, both) and m["on_policy_gap"] == pytest.approx(float(alone.detach()))
    for rank in (0, 1):  # two learner workers: each shard keeps its Executor rows' trajectories
        part = mixed.shard(rank, 2)
        assert part.size == (n + 2) // 2 and part.latents.shape[1] == len(range(rank, n, 2))
        assert torch.isfinite(LOSSES["on_policy_distill"](LossContext(bb, part, torch.Generator().manual_seed(4)))[0])


def test_anchor_targets_from_the_demonstrator_give_the_learners_loss(tiny_backbone_factory, tiny_images):
    """algorithm.anchor_on=demonstrator: the actor (same base weights, no adapter) draws the
    update's re-noised states from the batch seed and predicts there; the learner's loss and
    gradients are those it would have computed itself, and two-worker shards keep their rows."""
    student, teacher = tiny_backbone_factory(), tiny_backbone_factory()
    add_lora(student, student.cfg.lora)
    with torch.no_grad():
        for p in lora_parameters(student):
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    tasks = ["[red circle]: go to the top-left corner", "[blue square]: go to the centre"] * 2
    solutions = ["The red circle slides one cell left. Nothing else moves."] * 4
    x0 = torch.randn((4, *student.state_shape(1)[1:]), generator=torch.Generator().manual_seed(5)).numpy()
    make = lambda: TrainBatch(0, "executor", np.concatenate([tiny_images[:2]] * 2), tasks, solutions, x0,  # noqa: E731
                              np.array([1.0, 0.5, 0.0, 1.0], np.float32), np.zeros(4, np.int64), np.zeros(0), seed=11)
    weights = {"awm": 1.0, "anchor": 1.0}

    def loss_and_grads(batch):
        for p in lora_parameters(student):
            p.grad = None
        loss, m = total_loss(LossContext(student, batch, torch.Generator().manual_seed(batch.seed)), weights)
        loss.backward()
        return loss.detach(), m, [p.grad.clone() for p in lora_parameters(student)]

    own_loss, own_m, own_grads = loss_and_grads(make())
    shipped = anchor_targets(teacher, make())
    assert shipped.demonstrator_out.shape == x0.shape and shipped.renoise_sigma.shape == (4,)
    loss, m, grads = loss_and_grads(shipped)
    assert own_m["anchor/demonstrator_gap"] > 1e-6  # the adapter moved the Executor off the Demonstrator
    assert torch.allclose(loss, own_loss, rtol=1e-5)
    assert m["anchor/demonstrator_gap"] == pytest.approx(own_m["anchor/demonstrator_gap"], rel=1e-5)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(grads, own_grads))
    part = shipped.shard(1, 2)
    assert np.array_equal(part.demonstrator_out, shipped.demonstrator_out[1::2])
    assert np.array_equal(part.renoise_noise, shipped.renoise_noise[1::2])
