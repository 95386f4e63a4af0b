#!/usr/bin/env python3
"""Records MuJoCo's numbers for the Gymnasium and DeepMind Control suite models that
tests/mjcf_suites.rs compares backdrive with.

Writes tests/fixtures/mjcf/suites_reference.json. Every model runs with MuJoCo's Euler
integrator at the file's own time step, zero control, from the model pose with every hinge and
slide joint turned or moved by the same small PERTURBATION (free joints untouched):

* contact-free models (dm_control pendulum, acrobot, cartpole, swimmer, fish, ball_in_cup; gymnasium
  inverted_pendulum, inverted_double_pendulum, reacher, swimmer): every hinge and slide
  joint's coordinate after 1 s (`after_1s`), and the same coordinate with the equations of
  motion solved to convergence (`converged_1s`: RK4 at the file's time step /
  CONVERGED_DIVISION, which agrees with RK4 at half that step to 1e-4 rad on these models),
  with `reaches_limit` telling whether the joint went past a limit in that run (where
  MuJoCo's soft limit and backdrive's differ). At the file's time step MuJoCo's Euler is
  itself 0.021 to 0.058 rad from the converged solution of these unstable chains, so
  `converged_1s` is what checks that the imported model has MuJoCo's equations (masses,
  inertias, axes, damping), separately from how either engine discretises them;
* legged models (dm_control hopper, walker, cheetah, quadruped; gymnasium ant, half_cheetah,
  walker2d, humanoid): the root body's height (MuJoCo's `xpos`) once it rests (every joint
  speed below REST_SPEED for the last REST_SPAN seconds of MAX_TIME), or at 1 s when MuJoCo
  does not come to rest.

For each model it also stores what backdrive needs to start from the same state: every
body's world pose after the perturbation (`xpos`, `xquat` reordered to [x, y, z, w]), and, per
joint, its body, type, axis in the body frame and the body's pose in its parent at the model
pose (`body_pos`, `body_quat`), so that joint coordinates can be read off body poses.

Usage: BACKDRIVE_PYTHON=/path/to/python (with mujoco, gymnasium, dm_control)
       $BACKDRIVE_PYTHON benches/mjcf_suites_reference.py [--check]
With --check nothing is written: the numbers are recomputed and compared with the recorded
ones (exit status 1 on a difference beyond 1e-6).
"""

import json
import os
import sys

import mujoco
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "mjcf", "suites_reference.json")

PERTURBATION = 0.05  # rad for hinges, m for slides
REST_SPEED = 1e-3
REST_SPAN = 0.5
MAX_TIME = 5.0
CONVERGED_DIVISION = 32

CONTACT_FREE = [
    ("dm_control", "pendulum.xml"),
    ("dm_control", "acrobot.xml"),
    ("dm_control", "cartpole.xml"),
    ("gymnasium", "inverted_pendulum.xml"),
    ("gymnasium", "inverted_double_pendulum.xml"),
    ("gymnasium", "reacher.xml"),
    ("dm_control", "swimmer.xml"),
    ("gymnasium", "swimmer.xml"),
    ("dm_control", "fish.xml"),
    # The ball hangs from the cup on its string (a spatial tendon's distance limit) and
    # touches neither the cup nor the ground within 1 s.
    ("dm_control", "ball_in_cup.xml"),
]
LEGGED = [
    ("dm_control", "hopper.xml"),
    ("dm_control", "walker.xml"),
    ("dm_control", "cheetah.xml"),
    ("dm_control", "quadruped.xml"),
    ("gymnasium", "ant.xml"),
    ("gymnasium", "half_cheetah.xml"),
    ("gymnasium", "walker2d.xml"),
    ("gymnasium", "humanoid.xml"),
]


def package_dirs():
    # Located without importing them: gymnasium's mujoco package imports its renderer.
    import importlib.util

    def root(name):
        return importlib.util.find_spec(name).submodule_search_locations[0]

    return {
        "dm_control": os.path.join(root("dm_control"), "suite"),
        "gymnasium": os.path.join(root("gymnasium"), "envs", "mujoco", "assets"),
    }


def xyzw(q):
    return [float(q[1]), float(q[2]), float(q[3]), float(q[0])]


def body_name(m, b):
    return m.body(b).name or f"body{b}"


def start(m):
    """MjData at the model pose with every hinge and slide perturbed, zero control."""
    m.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    d = mujoco.MjData(m)
    for j in range(m.njnt):
        if int(m.jnt_type[j]) in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
            d.qpos[m.jnt_qposadr[j]] = m.qpos0[m.jnt_qposadr[j]] + PERTURBATION
    d.ctrl[:] = 0.0
    mujoco.mj_forward(m, d)
    return d


def describe(m, d):
    poses = [
        {
            "body": body_name(m, b),
            "pos": [float(x) for x in d.xpos[b]],
            "quat": xyzw(d.xquat[b]),
        }
        for b in range(1, m.nbody)
    ]
    joints = []
    for j in range(m.njnt):
        kind = {
            int(mujoco.mjtJoint.mjJNT_HINGE): "hinge",
            int(mujoco.mjtJoint.mjJNT_SLIDE): "slide",
        }.get(int(m.jnt_type[j]))
        if kind is None:
            continue
        b = m.jnt_bodyid[j]
        p = m.body_parentid[b]
        joints.append(
            {
                "name": m.joint(j).name,
                "kind": kind,
                "body": body_name(m, b),
                "parent": body_name(m, p) if p > 0 else None,
                "axis": [float(x) for x in m.jnt_axis[j]],
                "body_pos": [float(x) for x in m.body_pos[b]],
                "body_quat": xyzw(m.body_quat[b]),
                "qpos0": float(m.qpos0[m.jnt_qposadr[j]]),
            }
        )
    return poses, joints


def contact_free(path):
    m = mujoco.MjModel.from_xml_path(path)
    d = start(m)
    poses, joints = describe(m, d)
    steps = int(round(1.0 / m.opt.timestep))
    for _ in range(steps):
        mujoco.mj_step(m, d)
    for j in joints:
        jid = m.joint(j["name"]).id
        j["after_1s"] = float(d.qpos[m.jnt_qposadr[jid]] - m.qpos0[m.jnt_qposadr[jid]])
    converged, reached = converged_run(path, steps)
    for j in joints:
        j["converged_1s"] = converged[j["name"]]
        j["reaches_limit"] = reached[j["name"]]
    return {
        "kind": "contact-free",
        "timestep": float(m.opt.timestep),
        "steps": steps,
        "perturbation": PERTURBATION,
        "start": poses,
        "joints": joints,
    }


def converged_run(path, steps):
    """Joint coordinates after 1 s with RK4 at 1/CONVERGED_DIVISION of the file's step, and
    whether each joint went past one of its limits on the way."""
    m = mujoco.MjModel.from_xml_path(path)
    d = start(m)
    m.opt.integrator = mujoco.mjtIntegrator.mjINT_RK4
    m.opt.timestep /= CONVERGED_DIVISION
    hinge_or_slide = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    names = [m.joint(j).name for j in range(m.njnt) if int(m.jnt_type[j]) in hinge_or_slide]
    reached = {n: False for n in names}
    for _ in range(steps * CONVERGED_DIVISION):
        mujoco.mj_step(m, d)
        for n in names:
            j = m.joint(n).id
            lo, hi = m.jnt_range[j]
            q = d.qpos[m.jnt_qposadr[j]]
            if m.jnt_limited[j] and not lo <= q <= hi:
                reached[n] = True
    converged = {
        n: float(d.qpos[m.jnt_qposadr[m.joint(n).id]] - m.qpos0[m.jnt_qposadr[m.joint(n).id]])
        for n in names
    }
    return converged, reached


def legged(path):
    m = mujoco.MjModel.from_xml_path(path)
    d = start(m)
    poses, joints = describe(m, d)
    root = next(b for b in range(1, m.nbody) if m.body_jntnum[b] > 0)
    dt = m.opt.timestep
    height_1s = None
    last_moving = 0.0
    while d.time < MAX_TIME - 0.5 * dt:
        mujoco.mj_step(m, d)
        if np.abs(d.qvel).max() >= REST_SPEED:
            last_moving = d.time
        if height_1s is None and d.time >= 1.0 - 0.5 * dt:
            height_1s = float(d.xpos[root][2])
    rests = d.time - last_moving >= REST_SPAN
    return {
        "kind": "legged",
        "timestep": float(dt),
        "perturbation": PERTURBATION,
        "start": poses,
        "joints": joints,
        "root": body_name(m, root),
        "rests": bool(rests),
        # Rest: the final height after MAX_TIME; otherwise the height at 1 s.
        "time": float(MAX_TIME if rests else 1.0),
        "steps": int(round((MAX_TIME if rests else 1.0) / dt)),
        "height": float(d.xpos[root][2]) if rests else height_1s,
        "rested_after": float(last_moving),
    }


def compute():
    dirs = package_dirs()
    out = {
        "mujoco": mujoco.__version__,
        "integrator": "Euler",
        "perturbation": PERTURBATION,
        "models": {},
    }
    for package, name in CONTACT_FREE:
        out["models"][f"{package}/{name}"] = contact_free(os.path.join(dirs[package], name))
    for package, name in LEGGED:
        out["models"][f"{package}/{name}"] = legged(os.path.join(dirs[package], name))
    return out


def close(a, b, path="$"):
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys differ"]
        return [e for k in a for e in close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths differ"]
        return [e for i, (x, y) in enumerate(zip(a, b)) for e in close(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, (int, float)):
        return [] if abs(a - b) <= 1e-6 * max(1.0, abs(b)) else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main():
    data = compute()
    if "--check" in sys.argv:
        with open(OUT) as f:
            recorded = json.load(f)
        errors = close(data, recorded)
        for e in errors[:20]:
            print(e)
        print("suites reference: " + ("differs" if errors else "matches MuJoCo"))
        sys.exit(1 if errors else 0)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, OUT)
    for key, m in data["models"].items():
        if m["kind"] == "legged":
            what = "rests at" if m["rests"] else "at 1 s:"
            print(f"{key}: {m['root']} {what} {m['height']:.4f} m")
        else:
            print(f"{key}: " + ", ".join(f"{j['name']} {j['after_1s']:+.4f}" for j in m["joints"]))


if __name__ == "__main__":
    main()
