#!/usr/bin/env python3
"""Traces MuJoCo's drop of the legged suite models, as tests/mjcf_suites.rs compares them:
the root body's height every 0.25 s over 5 s, and the root's tilt and every hinge and slide
coordinate (from the model pose) at 1 s and at 5 s. The same start as
benches/mjcf_suites_reference.py (Euler, the file's step, zero control, joints perturbed).
The backdrive side is the ignored test `legged_drop_trace` in tests/mjcf_suites.rs, which
prints the same lines.

Usage: $BACKDRIVE_PYTHON benches/mjcf_legged_trace.py [KEY ...] [--set NAME=VALUE ...]
       [--every SECONDS] [--joints NAME,NAME]  (sampling period; joints printed with each height)
KEY is e.g. gymnasium/ant.xml (default: every legged model). --set changes the MuJoCo model
before the run, for experiments: opt.cone=1 (elliptic), opt.impratio=..., opt.noslip_iterations=...,
armature=0, damping=0, frictionloss=0, limits=0, solreflimit=TC,DR, solref=TC,DR (every geom), solimp=A,B,C (every geom),
margin=M (every geom), friction=MU (every geom's sliding friction), contype=0 (self-collision off:
only the geoms' contact with world geoms remains), condim=N (every geom).
"""

import os
import sys

import mujoco
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mjcf_suites_reference as reference  # noqa: E402


def apply(m, assignment):
    name, value = assignment.split("=", 1)
    numbers = [float(x) for x in value.split(",")]
    if name.startswith("opt."):
        # Integer options (cone, integrator, noslip_iterations) refuse a float.
        try:
            setattr(m.opt, name[4:], int(numbers[0]))
        except TypeError:
            setattr(m.opt, name[4:], numbers[0])
    elif name == "armature":
        m.dof_armature[:] = numbers[0]
    elif name == "limits":
        m.jnt_limited[:] = int(numbers[0])
    elif name == "solreflimit":
        m.jnt_solref[:, : len(numbers)] = numbers
    elif name == "damping":
        m.dof_damping[:] = numbers[0]
    elif name == "frictionloss":
        m.dof_frictionloss[:] = numbers[0]
    elif name == "solref":
        m.geom_solref[:, : len(numbers)] = numbers
    elif name == "solimp":
        m.geom_solimp[:, : len(numbers)] = numbers
    elif name == "margin":
        m.geom_margin[:] = numbers[0]
    elif name == "friction":
        m.geom_friction[:, 0] = numbers[0]
    elif name == "condim":
        m.geom_condim[:] = int(numbers[0])
    elif name == "contype":
        # Keep each robot geom's contact with the world's geoms only.
        world = m.geom_bodyid == 0
        m.geom_contype[~world] = 0
        m.geom_conaffinity[~world] = 1
        m.geom_contype[world] = 1
    else:
        raise SystemExit(f"unknown setting {name}")


def pose(m, d, root):
    up = d.xmat[root].reshape(3, 3)[:, 2]
    tilt = np.degrees(np.arccos(np.clip(up[2], -1.0, 1.0)))
    joints = []
    for j in range(m.njnt):
        if int(m.jnt_type[j]) in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
            a = m.jnt_qposadr[j]
            joints.append(f"{m.joint(j).name} {d.qpos[a] - m.qpos0[a]:+.3f}")
    return f"tilt {tilt:.1f} deg; " + ", ".join(joints)


def trace(path, settings, period=0.25, watched=()):
    m = mujoco.MjModel.from_xml_path(path)
    for s in settings:
        apply(m, s)
    d = reference.start(m)
    root = next(b for b in range(1, m.nbody) if m.body_jntnum[b] > 0)
    dt = m.opt.timestep
    every = max(1, int(round(period / dt)))
    total = int(round(5.0 / dt))
    heights, at_1s = [], ""
    for step in range(total + 1):
        if step % every == 0:
            heights.append(f"{d.xpos[root][2]:.3f}")
            if watched:
                q = [d.qpos[m.jnt_qposadr[m.joint(n).id]] - m.qpos0[m.jnt_qposadr[m.joint(n).id]] for n in watched]
                heights[-1] += "(" + " ".join(f"{x:+.2f}" for x in q) + ")"
        if step == int(round(1.0 / dt)):
            at_1s = pose(m, d, root)
        if step < total:
            mujoco.mj_step(m, d)
    return f"{' '.join(heights)}\n  1 s: {at_1s}\n  5 s: {pose(m, d, root)}"


def main():
    args = sys.argv[1:]
    options = ("--set", "--every", "--joints")
    settings = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    period = float(next((args[i + 1] for i, a in enumerate(args) if a == "--every"), 0.25))
    joints = next((args[i + 1].split(",") for i, a in enumerate(args) if a == "--joints"), [])
    keys = [a for i, a in enumerate(args) if a not in options and (i == 0 or args[i - 1] not in options)]
    dirs = reference.package_dirs()
    for package, name in reference.LEGGED:
        key = f"{package}/{name}"
        if keys and key not in keys:
            continue
        print(f"{key} (MuJoCo {' '.join(settings)}): {trace(os.path.join(dirs[package], name), settings, period, joints)}")


if __name__ == "__main__":
    main()
