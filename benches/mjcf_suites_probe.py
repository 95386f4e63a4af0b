#!/usr/bin/env python3
"""MuJoCo's side of examples/suite_probe.rs: one suite model's per-joint trajectory from the
suite comparison's start (benches/mjcf_suites_reference.py's `start`: Euler, the file's time
step, zero control, every hinge and slide perturbed), with one model property changed at a
time, to find what a deviation of backdrive's comes from.

Usage: $BACKDRIVE_PYTHON benches/mjcf_suites_probe.py gymnasium/reacher.xml
           [--no-armature] [--no-damping] [--no-gravity] [--no-limits] [--rk4] [--division K]
           [--every N]
Prints the time and every hinge and slide joint's coordinate (from qpos0) every N file steps
and at 1 s.
"""

import argparse
import os
import sys

import mujoco

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mjcf_suites_reference import PERTURBATION, package_dirs, start  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("key", help="package/file.xml, e.g. gymnasium/reacher.xml")
    p.add_argument("--no-armature", action="store_true")
    p.add_argument("--no-damping", action="store_true")
    p.add_argument("--no-gravity", action="store_true")
    p.add_argument("--no-limits", action="store_true")
    p.add_argument("--rk4", action="store_true")
    p.add_argument("--division", type=int, default=1)
    p.add_argument("--every", type=int, default=0)
    a = p.parse_args()
    package, name = a.key.split("/")
    m = mujoco.MjModel.from_xml_path(os.path.join(package_dirs()[package], name))
    if a.no_armature:
        m.dof_armature[:] = 0.0
    if a.no_damping:
        m.dof_damping[:] = 0.0
    if a.no_gravity:
        m.opt.gravity[:] = 0.0
    if a.no_limits:
        m.jnt_limited[:] = 0
    d = start(m)
    if a.rk4:
        m.opt.integrator = mujoco.mjtIntegrator.mjINT_RK4
    steps = int(round(1.0 / m.opt.timestep))
    m.opt.timestep /= a.division
    kinds = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
    joints = [j for j in range(m.njnt) if int(m.jnt_type[j]) in kinds]
    print("t " + " ".join(m.joint(j).name for j in joints), f"(perturbation {PERTURBATION})")

    def show(k):
        q = [d.qpos[m.jnt_qposadr[j]] - m.qpos0[m.jnt_qposadr[j]] for j in joints]
        print(f"{k * m.opt.timestep * a.division:.3f} " + " ".join(f"{x:.5f}" for x in q))

    for k in range(steps):
        if a.every and k % a.every == 0:
            show(k)
        for _ in range(a.division):
            mujoco.mj_step(m, d)
    show(steps)


if __name__ == "__main__":
    main()
