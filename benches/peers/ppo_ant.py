#!/usr/bin/env python3
"""PPO (stable-baselines3) on Gymnasium's Ant-v5 in MuJoCo, measured as backdrive's ant-run is.

Trains stable-baselines3's PPO with its default settings on Gymnasium's Ant-v5 (its reward:
forward velocity + healthy reward 1.0 - 0.5 |a|^2 control cost - contact cost; terminated when
the torso's z leaves [0.2, 1.0]) for a given number of robot-steps, and at each evaluation
point reports what backdrive's `ant-run` reports:

* robot-steps: MuJoCo physics steps of one robot (dt = 0.01 s, the model's time step), as
  backdrive counts one simulated step of one robot. Ant-v5 applies each action for
  `frame_skip` (5) physics steps, so one environment step is 5 robot-steps.
* the average forward speed over 10 s episodes (1000 robot-steps): the torso's x displacement
  over the episode divided by 10 s, with the deterministic policy, averaged over
  --eval-episodes episodes. An episode that terminates early (the ant fell or flipped) keeps
  the displacement it had made and counts as standing still for the rest of the 10 s.
* the robot-steps at which that speed first reached 1 m/s, if it did (resolution: the
  evaluation interval).

Training episodes are Ant-v5's own (1000 environment steps, 50 s, unless terminated). Running
this is optional; nothing in `cargo test` or CI runs it (tests/docs_agree.rs checks only that
--help and --install work on a bare Python).

Usage:
    python3 benches/peers/ppo_ant.py --install                       # install what is missing
    python3 benches/peers/ppo_ant.py --robot-steps 2000000 --json out/ppo_ant.json
    python3 benches/peers/ppo_ant.py --robot-steps 20000 --eval-every 10000   # a quick look
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

# numpy, gymnasium, mujoco, torch and stable-baselines3 are imported inside main's training
# path, so that --help and --install run on a bare Python without them.

PACKAGES = {
    "stable_baselines3": "stable-baselines3",
    "gymnasium": "gymnasium>=1.0",
    "mujoco": "mujoco",
    "torch": "torch",
}
EPISODE_SECONDS = 10.0


def missing_packages():
    """The pip names of the packages that cannot be imported here."""
    import importlib.util

    return [pip for module, pip in PACKAGES.items() if importlib.util.find_spec(module) is None]


def install():
    missing = missing_packages()
    if not missing:
        print("every package is installed:", ", ".join(PACKAGES))
        return 0
    print("installing:", " ".join(missing), flush=True)
    return subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing],
                          check=False).returncode


def write_json_atomically(path, data):
    """Writes beside the target and renames over it, so a failed run leaves no torn file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_writable(path):
    """Fails before training, not after it, when the JSON cannot be written."""
    if os.path.isdir(path):
        sys.exit(f"--json {path}: is a directory")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".ppo_ant_probe."):
        pass


def evaluate(model, make_env, episodes, seed, frame_skip, dt):
    """Average forward speed over 10 s episodes of the deterministic policy."""
    env = make_env()
    steps = int(round(EPISODE_SECONDS / (frame_skip * dt)))
    speeds = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        x0 = float(env.unwrapped.data.qpos[0])
        x = x0
        for _ in range(steps):
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, _ = env.step(action)
            x = float(env.unwrapped.data.qpos[0])
            if terminated or truncated:
                break
        speeds.append((x - x0) / EPISODE_SECONDS)
    env.close()
    return sum(speeds) / len(speeds)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Robot-steps are MuJoCo physics steps of one robot (dt = 0.01 s), as backdrive "
               "counts them; one Ant-v5 environment step is --frame-skip of them.")
    parser.add_argument("--install", action="store_true",
                        help="pip-install stable-baselines3, gymnasium, mujoco and torch where "
                             "missing, then exit")
    parser.add_argument("--robot-steps", type=int, default=2_000_000,
                        help="robot-steps to train for (default 2,000,000, ant-run's goal)")
    parser.add_argument("--eval-every", type=int, default=250_000,
                        help="evaluate every this many robot-steps (default 250,000)")
    parser.add_argument("--eval-episodes", type=int, default=5,
                        help="10 s episodes per evaluation (default 5)")
    parser.add_argument("--n-envs", type=int, default=1,
                        help="parallel environments (stable-baselines3 DummyVecEnv; default 1)")
    parser.add_argument("--frame-skip", type=int, default=5,
                        help="physics steps per action (Ant-v5's default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="write every figure here")
    args = parser.parse_args()
    if args.install:
        return install()
    for name in ("robot_steps", "eval_every", "eval_episodes", "n_envs", "frame_skip"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    missing = missing_packages()
    if missing:
        sys.exit(f"missing packages: {', '.join(missing)} (pass --install, or pip install them)")
    if args.json:
        check_writable(args.json)

    import gymnasium as gym
    import stable_baselines3
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    def make_env():
        return gym.make("Ant-v5", frame_skip=args.frame_skip)

    dt = make_env().unwrapped.model.opt.timestep
    env = make_vec_env(make_env, n_envs=args.n_envs, seed=args.seed)
    model = PPO("MlpPolicy", env, seed=args.seed, verbose=0, device="cpu")
    rows = []
    started = time.perf_counter()

    def record(robot_steps):
        t0 = time.perf_counter()
        speed = evaluate(model, make_env, args.eval_episodes, 10_000 + args.seed,
                         args.frame_skip, dt)
        eval_s = time.perf_counter() - t0
        row = {"robot_steps": robot_steps, "speed_m_per_s": speed,
               "train_wall_s": time.perf_counter() - started - sum(r["eval_wall_s"] for r in rows)
               - eval_s, "eval_wall_s": eval_s}
        rows.append(row)
        print(f"{robot_steps:>12,} robot-steps  {speed:+.3f} m/s  "
              f"(training {row['train_wall_s']:.0f} s so far)", flush=True)

    class Evaluate(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next = args.eval_every

        def _on_step(self):
            robot_steps = self.num_timesteps * args.frame_skip
            if robot_steps >= self.next:
                record(robot_steps)
                self.next += args.eval_every
            return True

    print(f"PPO (stable-baselines3 {stable_baselines3.__version__}) on Ant-v5, "
          f"{args.robot_steps:,} robot-steps, {args.n_envs} env(s), frame_skip {args.frame_skip}, "
          f"dt {dt}", flush=True)
    record(0)
    model.learn(total_timesteps=-(-args.robot_steps // args.frame_skip), callback=Evaluate())
    final_steps = model.num_timesteps * args.frame_skip
    if rows[-1]["robot_steps"] != final_steps:
        record(final_steps)
    reached = next((r["robot_steps"] for r in rows if r["speed_m_per_s"] >= 1.0), None)
    print("robot-steps to reach 1 m/s:",
          f"{reached:,}" if reached is not None else f"not reached within {final_steps:,}")
    if args.json:
        import gymnasium
        import mujoco
        import torch

        write_json_atomically(args.json, {
            "env": "Ant-v5", "algorithm": "PPO (stable-baselines3 defaults, MlpPolicy)",
            "versions": {"stable_baselines3": stable_baselines3.__version__,
                         "gymnasium": gymnasium.__version__, "mujoco": mujoco.__version__,
                         "torch": torch.__version__, "python": platform.python_version()},
            "args": {k: v for k, v in vars(args).items() if k != "install"},
            "episode_seconds": EPISODE_SECONDS, "rows": rows,
            "robot_steps_to_1_m_per_s": reached,
        })
        print("wrote", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
