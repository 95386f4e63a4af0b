#!/usr/bin/env python3
"""Records MuJoCo's compiled mass properties of dm_control's dog (dog.xml), whose bodies take
their mass from 157 STL bone meshes, for tests/mjcf_meshes.rs.

Writes tests/fixtures/mjcf/dog_masses.json: per body (MuJoCo's order, world body left out) its
name, `body_mass`, `body_ipos` (centre of mass in the body frame), `body_inertia` (principal
moments, about the centre of mass), and `xipos` (the centre of mass in the world at the model
pose, after mj_kinematics), plus the MuJoCo version. The STL files stay in the dm_control
package; only these numbers are stored.

Usage: BACKDRIVE_PYTHON=/path/to/python (with mujoco and dm_control)
       $BACKDRIVE_PYTHON benches/mjcf_mesh_reference.py [--check]
With --check nothing is written: the numbers are recomputed and compared with the recorded
ones (exit status 1 on a relative difference beyond 1e-9).
"""

import importlib.util
import json
import os
import sys

import mujoco

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "mjcf", "dog_masses.json")


def dog_path():
    spec = importlib.util.find_spec("dm_control")
    return os.path.join(spec.submodule_search_locations[0], "suite", "dog.xml")


def measure():
    model = mujoco.MjModel.from_xml_path(dog_path())
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    bodies = []
    for b in range(1, model.nbody):
        bodies.append(
            {
                "name": mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b),
                "mass": float(model.body_mass[b]),
                "ipos": [float(x) for x in model.body_ipos[b]],
                "inertia": [float(x) for x in model.body_inertia[b]],
                "xipos": [float(x) for x in data.xipos[b]],
            }
        )
    return {"mujoco": mujoco.__version__, "file": "dm_control/suite/dog.xml", "bodies": bodies}


def main():
    got = measure()
    if "--check" in sys.argv[1:]:
        with open(OUT) as f:
            want = json.load(f)
        worst = 0.0
        for a, b in zip(got["bodies"], want["bodies"]):
            assert a["name"] == b["name"], (a["name"], b["name"])
            for key in ("mass", "ipos", "inertia", "xipos"):
                x = a[key] if isinstance(a[key], list) else [a[key]]
                y = b[key] if isinstance(b[key], list) else [b[key]]
                for u, v in zip(x, y):
                    worst = max(worst, abs(u - v) / max(abs(v), 1e-12))
        print(f"largest relative difference: {worst:.3g}")
        sys.exit(0 if worst <= 1e-9 and len(got["bodies"]) == len(want["bodies"]) else 1)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(got, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, OUT)
    print(f"wrote {OUT}: {len(got['bodies'])} bodies (MuJoCo {got['mujoco']})")


if __name__ == "__main__":
    main()
