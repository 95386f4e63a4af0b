"""PyTorch autograd functions over backdrive rollouts (needs ``torch``).

:func:`rollout` runs a :class:`backdrive.Rollout` forward and returns each instance's loss and
final raw state as tensors; their backward pass is backdrive's adjoint on the GPU, so a PyTorch
model that produces the initial state, the commands or the physical parameters trains through
the simulator. With a ``horizon=1`` rollout and no loss terms, :func:`rollout` is one
differentiable simulator step for a closed-loop policy (see ``examples/train_cartpole_torch.py``).

The simulation runs in float32 whatever the tensors' dtype; outputs and gradients come back
in the dtype and on the device of the inputs.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from . import Rollout

__all__ = ["RolloutFunction", "rollout"]


def _numpy(t: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    if t is None:
        return None
    return t.detach().to("cpu", torch.float32).contiguous().numpy()


class RolloutFunction(torch.autograd.Function):
    """``(rollout, initial_state, commands, params) -> (loss, final_state)``.

    Shapes: ``initial_state`` ``(n, state_len)``, ``commands`` ``(n, horizon, actuators)``,
    ``params`` ``(n, param_len)`` or ``None`` (the model's parameters, no gradient);
    ``loss`` ``(n,)``, ``final_state`` ``(n, state_len)``.

    Backward: instance ``i``'s inputs receive ``g_loss[i] * dL_i/dx + J_i^T g_final[i]``, where
    ``J_i`` is the Jacobian of its final state. When both incoming gradients are present and
    the rollout has loss terms, the adjoint runs twice (once seeded with the final-state
    gradient, once without) and the final-state part is their difference.
    """

    @staticmethod
    def forward(ctx, sim_rollout: Rollout, initial_state, commands, params):  # type: ignore[override]
        loss, final = sim_rollout.forward(_numpy(initial_state), _numpy(commands), _numpy(params))
        ctx.sim_rollout = sim_rollout
        ctx.inputs = (_numpy(initial_state), _numpy(commands), _numpy(params))
        ctx.like = (initial_state, commands, params)
        ref = initial_state if initial_state is not None else commands
        out = lambda a: torch.from_numpy(a).to(ref.device, ref.dtype)  # noqa: E731
        return out(loss), out(final)

    @staticmethod
    def backward(ctx, grad_loss, grad_final):  # type: ignore[override]
        r: Rollout = ctx.sim_rollout
        x0, u, p = ctx.inputs
        seed = None if grad_final is None else _numpy(grad_final)
        if seed is not None and not np.any(seed):
            seed = None
        gl = None if grad_loss is None or not r.has_loss else _numpy(grad_loss).astype(np.float64)
        if gl is not None and not np.any(gl):
            gl = None
        keys = ("initial_state", "commands", "params")
        if gl is None and seed is None:
            grads = {k: None for k in keys}
        elif gl is None and not r.has_loss:
            grads = r.gradients(x0, u, p, seed)
        else:
            # Every adjoint pass carries the loss terms with weight 1 per instance: a pass
            # without a seed gives dL_i/dx, to be scaled by g_loss[i]; the final-state part
            # is a seeded pass minus that one.
            loss_only = r.gradients(x0, u, p)
            seeded = r.gradients(x0, u, p, seed) if seed is not None else None
            grads = {}
            for k in keys:
                scale = 0.0 if gl is None else gl.reshape((-1,) + (1,) * (loss_only[k].ndim - 1))
                grads[k] = loss_only[k] * scale
                if seeded is not None:
                    grads[k] = grads[k] + (seeded[k] - loss_only[k])
        out = []
        for name, like in zip(("initial_state", "commands", "params"), ctx.like):
            g = grads[name]
            if like is None or g is None or not ctx.needs_input_grad[1 + len(out)]:
                out.append(None)
            else:
                out.append(torch.from_numpy(np.asarray(g, np.float32)).to(like.device, like.dtype))
        return (None, *out)


def rollout(
    sim_rollout: Rollout,
    initial_state: torch.Tensor,
    commands: torch.Tensor,
    params: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Differentiable rollout: returns ``(loss, final_state)`` (see :class:`RolloutFunction`)."""
    return RolloutFunction.apply(sim_rollout, initial_state, commands, params)
