#!/usr/bin/env python3
"""Peers side by side: backdrive, MuJoCo C, MuJoCo MJX (JAX, CPU) and NVIDIA Warp on the same
machine and the same model, the gymnasium ant (tests/fixtures/mjcf/gymnasium_ant.xml).

Every engine is timed on this machine in one run, so the figures compare like with like.
Engines use different time steps; the table therefore also gives simulated robot-seconds per
wall-clock second (steps/s x dt).

* backdrive: runs `backdrive bench --models ant --json ...` (or reads --ours FILE) and reports
  forward and forward+backward robot-steps/s at each N, backward/forward, and the analytic
  gradient's time against finite differences over the ant's physical parameters.
* MuJoCo C: `mujoco.rollout` with one MjData per thread (multithreaded rollouts), at the
  file's integrator (RK4) and with the Euler integrator; its gradient cost is that of finite
  differences: `mjd_transitionFD` per step relative to `mj_step`, and the cost of a
  finite-difference gradient of a T-step rollout over P parameters (2P rollouts).
* MJX (`--with mjx`): `mjx.put_model`, `jax.vmap(mjx.step)` under `jax.jit`, on JAX's CPU
  back end; reverse-mode gradient of the final torso x over a short rollout with `jax.grad`.
* Warp (`--with warp`): `warp.sim` (warp-lang < 1.10) on Warp's CPU device, semi-implicit
  integrator; forward+backward with `wp.Tape`. Newer warp-lang moved warp.sim to the Newton
  project; this section is then skipped with a message.

Missing packages are installed from PyPI with pip when --install is given (mujoco,
mujoco-mjx, jax, warp-lang); otherwise the section is skipped.

Usage:
    python3 benches/peers/compare.py                      # backdrive + MuJoCo C
    python3 benches/peers/compare.py --with mjx,warp --install
    python3 benches/peers/compare.py --quick --ours out/bench.json
"""

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANT = os.path.join(ROOT, "tests", "fixtures", "mjcf", "gymnasium_ant.xml")


def need(module, package, install):
    """Imports `module`, installing `package` with pip first when allowed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if not install:
            return None
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=False)
        try:
            return importlib.import_module(module)
        except ImportError:
            return None


def row(engine, n, steps_per_s, dt, note=""):
    return {
        "engine": engine,
        "N": n,
        "robot_steps_per_s": steps_per_s,
        "dt": dt,
        "sim_s_per_wall_s": steps_per_s * dt,
        "note": note,
    }


# --- backdrive -------------------------------------------------------------------------------


def ours(args):
    if args.ours:
        with open(args.ours) as f:
            report = json.load(f)
    else:
        exe = args.backdrive or os.path.join(ROOT, "target", "release", "backdrive")
        if not os.path.exists(exe):
            subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ours.json")
            cmd = [exe, "bench", "--models", "ant", "--json", path,
                   "--instances", ",".join(str(n) for n in args.instances),
                   "--steps", str(args.steps), "--gradient-steps", str(args.gradient_steps),
                   "--fd-steps", str(args.gradient_steps)]
            if args.quick:
                cmd.append("--quick")
            print("running:", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            with open(path) as f:
                report = json.load(f)
    rows = []
    for c in report["results"]:
        if c["model"] != "ant":
            continue
        rows.append(row("backdrive fwd", c["instances"], c["robot_steps_per_s"], 0.01,
                        report["adapter"]["name"]))
    grads = {}
    for g in report.get("gradient_results", []):
        if g["model"] != "ant":
            continue
        rows.append(row("backdrive fwd+bwd", g["instances"],
                        g["forward_backward_robot_steps_per_s"], 0.01,
                        f"T={g['steps']}, bwd/fwd={g['backward_over_forward']:.2f}"))
        grads[g["instances"]] = g
    fd = [f for f in report.get("fd_results", []) if f["model"] == "ant"]
    return rows, grads, fd


# --- MuJoCo C ----------------------------------------------------------------------------------


def mujoco_c(args, mujoco):
    from mujoco import rollout

    rows = []
    extra = {}
    for integrator in ("file", "euler"):
        m = mujoco.MjModel.from_xml_path(ANT)
        if integrator == "euler":
            m.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
        name = "RK4 (file)" if integrator == "file" else "Euler"
        d = mujoco.MjData(m)
        mujoco.mj_forward(m, d)
        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        state0 = np.zeros(mujoco.mj_stateSize(m, spec))
        mujoco.mj_getState(m, d, state0, spec)
        datas = [mujoco.MjData(m) for _ in range(args.threads)]
        rng = np.random.default_rng(0)
        for n in args.instances:
            if n * args.steps > args.mujoco_max_steps:
                continue
            init = np.tile(state0, (n, 1))
            ctrl = 0.2 * rng.standard_normal((n, args.steps, m.nu))
            models = [m] * n
            rollout.rollout(models, datas, init, ctrl[:, :10], nstep=10)  # warm-up
            t0 = time.perf_counter()
            rollout.rollout(models, datas, init, ctrl)
            sec = time.perf_counter() - t0
            rate = n * args.steps / sec
            rows.append(row(f"MuJoCo C {name}, {args.threads} threads", n, rate,
                            m.opt.timestep))
            print(f"  MuJoCo C {name:<10} N={n:<6} {rate:>12,.0f} robot-steps/s", flush=True)
        # Gradient cost: one finite-difference transition Jacobian per step, single thread.
        d = mujoco.MjData(m)
        mujoco.mj_resetData(m, d)
        nx = 2 * m.nv + m.na
        A = np.zeros((nx, nx))
        B = np.zeros((nx, m.nu))
        reps = 200
        t0 = time.perf_counter()
        for _ in range(reps):
            mujoco.mj_step(m, d)
        step_s = (time.perf_counter() - t0) / reps
        mujoco.mj_resetData(m, d)
        t0 = time.perf_counter()
        try:
            for _ in range(reps // 4):
                mujoco.mjd_transitionFD(m, d, 1e-6, 1, A, B, None, None)
                mujoco.mj_step(m, d)
        except Exception as e:  # e.g. "RK4 integrator is not supported"
            print(f"  MuJoCo C {name:<10} mjd_transitionFD: {e}", flush=True)
            continue
        fd_s = (time.perf_counter() - t0) / (reps // 4) - step_s
        extra[name] = {"mj_step_s": step_s, "mjd_transitionFD_s": fd_s,
                       "transitionFD_over_step": fd_s / step_s}
        print(f"  MuJoCo C {name:<10} mjd_transitionFD (centred) = {fd_s / step_s:.1f} x mj_step"
              f" ({step_s * 1e6:.1f} us per step, one thread)", flush=True)
    return rows, extra


# --- MJX ---------------------------------------------------------------------------------------


def mjx_section(args, mujoco):
    jax = need("jax", "jax", args.install)
    mjx = need("mujoco.mjx", "mujoco-mjx", args.install)
    if jax is None or mjx is None:
        print("  MJX: skipped (jax / mujoco-mjx missing; pass --install)")
        return [], {}
    import jax.numpy as jnp

    jax.config.update("jax_platform_name", "cpu")
    m = mujoco.MjModel.from_xml_path(ANT)
    mx = mjx.put_model(m)
    rows = []
    step = jax.jit(jax.vmap(mjx.step, in_axes=(None, 0)))
    for n in [n for n in args.instances if n <= args.mjx_max_n]:
        d = jax.vmap(lambda _: mjx.make_data(mx))(jnp.arange(n))
        d = step(mx, d)
        jax.block_until_ready(d)
        t = max(10, min(args.steps, 100))
        t0 = time.perf_counter()
        for _ in range(t):
            d = step(mx, d)
        jax.block_until_ready(d)
        rate = n * t / (time.perf_counter() - t0)
        rows.append(row("MJX (JAX CPU)", n, rate, m.opt.timestep))
        print(f"  MJX N={n:<6} {rate:>12,.0f} robot-steps/s", flush=True)
    extra = {}
    horizon = min(args.gradient_steps, 50)

    def final_x(qvel0):
        d = mjx.make_data(mx).replace(qvel=qvel0)

        def body(d, _):
            return mjx.step(mx, d), None

        d, _ = jax.lax.scan(body, d, None, length=horizon)
        return d.qpos[0]

    try:
        f = jax.jit(final_x)
        g = jax.jit(jax.grad(final_x))
        q = jnp.zeros(m.nv)
        jax.block_until_ready(f(q))
        jax.block_until_ready(g(q))
        t0 = time.perf_counter()
        jax.block_until_ready(f(q))
        tf = time.perf_counter() - t0
        t0 = time.perf_counter()
        gv = jax.block_until_ready(g(q))
        tg = time.perf_counter() - t0
        extra = {"horizon": horizon, "forward_s": tf, "gradient_s": tg,
                 "gradient_over_forward": tg / tf, "finite": bool(np.all(np.isfinite(gv)))}
        print(f"  MJX gradient over {horizon} steps: {tg / tf:.1f} x forward, finite: "
              f"{extra['finite']}", flush=True)
    except Exception as e:  # reverse mode fails with some solver settings
        extra = {"error": str(e)[:300]}
        print(f"  MJX gradient failed: {str(e)[:200]}")
    return rows, extra


# --- Warp --------------------------------------------------------------------------------------


def warp_section(args):
    wp = need("warp", "warp-lang<1.10", args.install)
    if wp is None:
        print("  Warp: skipped (warp-lang missing; pass --install)")
        return [], {}
    try:
        import warp.sim
    except ImportError:
        print("  Warp: skipped (this warp-lang has no warp.sim; it moved to Newton)")
        return [], {}
    wp.init()
    device = "cpu"
    dt = args.warp_dt
    rows = []
    extra = {}
    for n in [n for n in args.instances if n <= args.warp_max_n]:
        builder = warp.sim.ModelBuilder()
        for i in range(n):
            b = warp.sim.ModelBuilder()
            warp.sim.parse_mjcf(ANT, b, floating=True, enable_self_collisions=False)
            builder.add_builder(b, xform=wp.transform((2.0 * i, 0.0, 0.0), wp.quat_identity()))
        model = builder.finalize(device=device, requires_grad=False)
        model.ground = True
        integrator = warp.sim.SemiImplicitIntegrator()
        s0, s1 = model.state(), model.state()
        t = max(10, min(args.steps, 200))
        for _ in range(2):
            s0.clear_forces()
            warp.sim.collide(model, s0)
            integrator.simulate(model, s0, s1, dt)
            s0, s1 = s1, s0
        wp.synchronize()
        t0 = time.perf_counter()
        for _ in range(t):
            s0.clear_forces()
            warp.sim.collide(model, s0)
            integrator.simulate(model, s0, s1, dt)
            s0, s1 = s1, s0
        wp.synchronize()
        rate = n * t / (time.perf_counter() - t0)
        rows.append(row("Warp sim (CPU) semi-implicit", n, rate, dt))
        print(f"  Warp N={n:<6} {rate:>12,.0f} robot-steps/s at dt {dt}", flush=True)
    # Gradient cost: a tape over a short rollout, one state per step.
    try:
        n = min(args.instances[-1], args.warp_max_n, 128)
        builder = warp.sim.ModelBuilder()
        for i in range(n):
            b = warp.sim.ModelBuilder()
            warp.sim.parse_mjcf(ANT, b, floating=True, enable_self_collisions=False)
            builder.add_builder(b, xform=wp.transform((2.0 * i, 0.0, 0.0), wp.quat_identity()))
        model = builder.finalize(device=device, requires_grad=True)
        model.ground = True
        integrator = warp.sim.SemiImplicitIntegrator()
        horizon = min(args.gradient_steps, 100)
        states = [model.state(requires_grad=True) for _ in range(horizon + 1)]

        def run_forward():
            for k in range(horizon):
                states[k].clear_forces()
                warp.sim.collide(model, states[k])
                integrator.simulate(model, states[k], states[k + 1], dt)

        run_forward()
        wp.synchronize()
        t0 = time.perf_counter()
        run_forward()
        wp.synchronize()
        tf = time.perf_counter() - t0
        tape = wp.Tape()
        with tape:
            run_forward()
        loss = wp.zeros(1, dtype=float, requires_grad=True, device=device)

        @wp.kernel
        def sum_x(q: wp.array(dtype=float), out: wp.array(dtype=float)):
            wp.atomic_add(out, 0, q[wp.tid()])

        with tape:
            wp.launch(sum_x, dim=states[-1].body_q.shape[0] * 7,
                      inputs=[states[-1].body_q.flatten()], outputs=[loss], device=device)
        wp.synchronize()
        t0 = time.perf_counter()
        tape.backward(loss)
        wp.synchronize()
        tb = time.perf_counter() - t0
        extra = {"N": n, "horizon": horizon, "forward_s": tf, "backward_s": tb,
                 "fwd_plus_bwd_over_fwd": (tf + tb) / tf}
        print(f"  Warp gradient N={n}, {horizon} steps: (fwd+bwd)/fwd = {(tf + tb) / tf:.1f}",
              flush=True)
    except Exception as e:
        extra = {"error": str(e)[:300]}
        print(f"  Warp gradient failed: {str(e)[:200]}")
    return rows, extra


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short horizons and small batches")
    p.add_argument("--with", dest="peers", default="",
                   help="optional peers: mjx, warp (comma-separated)")
    p.add_argument("--install", action="store_true", help="pip install missing packages")
    p.add_argument("--ours", help="read backdrive's numbers from this bench JSON")
    p.add_argument("--no-ours", action="store_true", help="do not run backdrive")
    p.add_argument("--backdrive", help="path of the backdrive binary")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--instances", default=None, help="batch sizes, e.g. 1,16,128,1024")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--gradient-steps", type=int, default=None)
    p.add_argument("--mujoco-max-steps", type=int, default=2_000_000,
                   help="skip MuJoCo batches with more robot-steps than this")
    p.add_argument("--mjx-max-n", type=int, default=128)
    p.add_argument("--warp-max-n", type=int, default=128)
    p.add_argument("--warp-dt", type=float, default=1e-4,
                   help="Warp's semi-implicit ant is stable only at small time steps")
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args()
    if args.instances is None:
        args.instances = "1,16,128" if args.quick else "1,16,128,1024"
    args.instances = [int(x) for x in args.instances.split(",")]
    if args.steps is None:
        args.steps = 50 if args.quick else 1000
    if args.gradient_steps is None:
        args.gradient_steps = 10 if args.quick else 100
    peers = {x.strip() for x in args.peers.split(",") if x.strip()}

    rows, report = [], {"machine_cpus": os.cpu_count(), "model": ANT}
    if not args.no_ours:
        print("backdrive:", flush=True)
        r, grads, fd = ours(args)
        rows += r
        report["backdrive_fd"] = fd
    mujoco = need("mujoco", "mujoco", args.install)
    if mujoco is None:
        print("MuJoCo: skipped (pip install mujoco, or pass --install)")
    else:
        print(f"MuJoCo C {mujoco.__version__}:", flush=True)
        r, extra = mujoco_c(args, mujoco)
        rows += r
        report["mujoco_gradient_cost"] = extra
        if "mjx" in peers:
            print("MuJoCo MJX:", flush=True)
            r, extra = mjx_section(args, mujoco)
            rows += r
            report["mjx_gradient"] = extra
    if "warp" in peers:
        print("NVIDIA Warp:", flush=True)
        r, extra = warp_section(args)
        rows += r
        report["warp_gradient"] = extra

    print()
    print(f"{'engine':<38} {'N':>6} {'robot-steps/s':>14} {'dt':>7} {'sim-s/wall-s':>13}  note")
    for r in rows:
        print(f"{r['engine']:<38} {r['N']:>6} {r['robot_steps_per_s']:>14,.0f} {r['dt']:>7g} "
              f"{r['sim_s_per_wall_s']:>13,.1f}  {r['note']}")
    if report.get("backdrive_fd"):
        for f in report["backdrive_fd"]:
            print(f"backdrive analytic gradient over {f['parameters']} physical parameters, "
                  f"{f['steps']} steps: {f['analytic_seconds']:.3f} s; central finite "
                  f"differences ({f['fd_instances']} robots batched): {f['fd_seconds']:.3f} s "
                  f"({f['fd_over_analytic']:.1f}x), cosine {f['cosine']}")
    for name, e in report.get("mujoco_gradient_cost", {}).items():
        print(f"MuJoCo C {name}: finite-difference Jacobian per step = "
              f"{e['transitionFD_over_step']:.1f} steps; a finite-difference gradient over P "
              "parameters of a T-step rollout costs 2P rollouts")
    report["rows"] = rows
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print("wrote", args.json)


if __name__ == "__main__":
    main()
