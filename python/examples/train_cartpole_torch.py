"""Trains a small PyTorch policy through backdrive on the cart-pole.

The task of `backdrive train cartpole-balance`, driven from PyTorch: the cart starts pushed
at 1 m/s; the policy (a 2 x 32 tanh MLP in torch) reads the cart's and the pole's positions
and velocities before every step and sets the servo command; the loss is the mean over the
episode of the cart's squared distance from the middle plus 0.1 times the pole's squared
velocity. Each step is a one-step `backdrive.Rollout` wrapped by `backdrive.torch.rollout`,
so `loss.backward()` runs backdrive's adjoint through every step back into the policy.

    python python/examples/train_cartpole_torch.py [--iters 30] [--batch 16] [--horizon 150]
"""

import argparse
import time

import numpy as np
import torch

import backdrive
import backdrive.torch as bt

B = backdrive.BODY_STATE_LEN
CART, POLE = 1 * B, 2 * B  # raw-state offsets of the bodies (the world is body 0)


def observe(state: torch.Tensor) -> torch.Tensor:
    return torch.cat(
        [state[:, CART : CART + 3], state[:, CART + 7 : CART + 10],
         state[:, POLE : POLE + 3], state[:, POLE + 7 : POLE + 10]], dim=1)


def main() -> None:
    ap = argparse.ArgumentParser(description="train a torch policy on the cart-pole")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--horizon", type=int, default=150)
    ap.add_argument("--lr", type=float, default=1e-2)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = backdrive.load("cartpole")
    policy = torch.nn.Sequential(
        torch.nn.Linear(12, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, model.n_actuators))
    torch.nn.init.zeros_(policy[-1].weight)
    torch.nn.init.zeros_(policy[-1].bias)
    # Before the first GPU object: the optimiser imports torch._dynamo, which with PyPI's CUDA
    # build of torch loads triton's own LLVM, and that crashes once Mesa's lavapipe has loaded
    # its LLVM into the process (the CPU wheel has no triton).
    opt = torch.optim.Adam(policy.parameters(), lr=args.lr)
    step = backdrive.Rollout(model, args.batch, 1)  # one differentiable step, no loss terms
    x0 = np.repeat(model.initial_state()[None], args.batch, axis=0)
    # Pushed carts: 0.5 to 1.5 m/s along the rail.
    x0[:, CART + 7] = np.linspace(0.5, 1.5, args.batch)
    start = torch.tensor(x0)
    t0 = time.perf_counter()
    for it in range(args.iters):
        state, loss = start, 0.0
        for _ in range(args.horizon):
            command = policy(observe(state)).unsqueeze(1)  # (batch, 1 step, actuators)
            _, state = bt.rollout(step, state, command)
            loss = loss + state[:, CART] ** 2 + 0.1 * (state[:, POLE + 7] ** 2 + state[:, POLE + 9] ** 2)
        loss = (loss / args.horizon).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        final_x = state[:, CART].abs().mean().item()
        print(f"iteration {it + 1:3d}  loss {loss.item():.5f}  mean |cart x| at the end "
              f"{final_x:.3f} m  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
