#!/usr/bin/env python3
"""Peers side by side: backdrive, MuJoCo C, MuJoCo MJX (JAX) and NVIDIA Warp on one machine.

Every engine steps the same model, the gymnasium ant (tests/fixtures/mjcf/gymnasium_ant.xml),
on this machine in one run of this script, so the figures compare like with like. Two tables
come out:

* forward throughput: robot-steps per second at each batch size N, and simulated
  robot-seconds per wall-clock second (engines use different time steps);
* gradient cost: the time of a forward rollout plus its gradient over the time of the same
  forward rollout alone, for the same horizon H and batch N.

Sections:

* backdrive: `backdrive bench --models ant` (release binary; built with cargo when absent),
  or the JSON of an earlier run (--ours FILE). Its gradient is the reverse pass of the whole
  rollout (loss = final x of every body; gradients for the state, the commands and the physical
  parameters).
* MuJoCo C (`mujoco`): `mujoco.rollout` with one MjData per thread, with the file's RK4 and
  with Euler. MuJoCo has no reverse mode; its cheapest gradient of a rollout is one centred
  finite-difference transition Jacobian (`mjd_transitionFD`) per step followed by a backward
  sweep of vector-Jacobian products, which is what is timed (one thread, one robot; robots are
  independent, so the ratio holds at every N).
* MJX (`jax`, `mujoco-mjx`): `jax.jit(jax.vmap(...))` of a `lax.scan` over `mjx.step`, on
  JAX's CPU back end. Gradient: `jax.vmap(jax.value_and_grad(...))` of the final torso x with
  respect to the control sequence. MJX's constraint solver runs a `lax.while_loop`, which JAX
  cannot reverse-differentiate, so the gradient (and its forward reference) uses
  `opt.iterations = 1`, which MJX runs as a single solver step without the loop.
* Warp (`warp-lang` 1.9.x, the last releases with `warp.sim`; later ones moved it to the
  Newton project): `warp.sim.parse_mjcf` and the semi-implicit integrator on Warp's CPU
  device, at a small time step (--warp-dt; maximal coordinates held by joint springs are stiff).
  Gradient: `wp.Tape` over the rollout, one state per step, loss = sum of the torsos' x, with
  respect to the joint actuation. warp.sim's MJCF importer ignores <motor> and drives every
  hinge as a PD position target (ke = 100, kd = 1), so the actuation is a target angle.

MJX and Warp run in child processes of this script: each is time-boxed (--section-timeout),
and mujoco-mjx imports warp-lang when present, which breaks with the warp-lang 1.9 that
warp.sim needs, so --install puts that warp-lang into its own folder (--warp-dir) that only the
Warp child puts on its path. A section whose packages are missing is skipped with the reason;
--install installs them from PyPI with pip first.

Usage:
    python3 benches/peers/compare.py --install --json out/peers.json     # everything
    python3 benches/peers/compare.py --skip mjx,warp                      # backdrive + MuJoCo C
    python3 benches/peers/compare.py --quick                              # N = 1, 128; short
    python3 benches/peers/compare.py --ours out/bench.json    # reuse a `backdrive bench --json`
"""

import argparse
import contextlib
import functools
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

# numpy is imported inside the peer sections that need it (all of them depend on it), so that
# --help and --install run on a bare Python without it.

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANT = os.path.join(ROOT, "tests", "fixtures", "mjcf", "gymnasium_ant.xml")
WARP_PIN = "warp-lang==1.9.1"
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "backdrive-peers")
DEFAULT_WARP_DIR = os.path.join(CACHE, "warp-lang-1.9.1")
SECTIONS = ("ours", "mujoco", "mjx", "warp")


# --- shared helpers ----------------------------------------------------------------------------


def throughput(engine, n, steps_per_s, dt, note=""):
    """One row of the forward table."""
    return {"engine": engine, "N": n, "robot_steps_per_s": steps_per_s, "dt": dt,
            "sim_s_per_wall_s": steps_per_s * dt, "note": note}


def gradient(engine, n, horizon, wrt, forward_s=None, gradient_s=None, note=""):
    """One row of the gradient table; without timings it records why there is no number."""
    return {"engine": engine, "N": n, "horizon": horizon, "wrt": wrt, "forward_s": forward_s,
            "forward_plus_gradient_s": gradient_s,
            "ratio": gradient_s / forward_s if forward_s and gradient_s else None, "note": note}


class Results(dict):
    """What a section measured: its version, forward rows and gradient rows. In a child
    process it is saved after every figure, so a section that --section-timeout stops still
    reports what it finished."""

    def __init__(self, version, path=None):
        super().__init__(version=version, rows=[], gradients=[])
        self.path = path

    def row(self, r):
        self["rows"].append(r)
        self.save()

    def grad(self, g):
        self["gradients"].append(g)
        self.save()

    def save(self):
        if self.path:
            with open(self.path + ".tmp", "w") as f:
                json.dump(self, f)
            os.replace(self.path + ".tmp", self.path)


def timed(fn, budget_s, min_calls=3):
    """Seconds per call of fn(): the median over as many calls as fit in budget_s (at least
    min_calls). The median, not the mean, because this machine may be shared: a short call that
    the scheduler preempts takes many times its length. fn must block until its work is done."""
    times, t0 = [], time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - t0 < budget_s:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(statistics.median(times))


def timed_pair(forward, forward_and_gradient, budget_s, min_calls=3):
    """Seconds per call of forward() and of forward_and_gradient(), each the median over calls
    that alternate between the two until budget_s is spent, so that both see the same load."""
    pairs, t0 = [], time.perf_counter()
    while len(pairs) < min_calls or time.perf_counter() - t0 < budget_s:
        t = time.perf_counter()
        forward()
        t_mid = time.perf_counter()
        forward_and_gradient()
        pairs.append((t_mid - t, time.perf_counter() - t_mid))
    return (float(statistics.median(p[0] for p in pairs)),
            float(statistics.median(p[1] for p in pairs)))


def pip_install(*packages, target=None):
    """pip-installs packages into this interpreter's environment, or into a folder."""
    cmd = [sys.executable, "-m", "pip", "install", "-q"]
    if target:
        cmd += ["--no-deps", "--target", target]
    print("  installing:", " ".join(packages), f"(into {target})" if target else "", flush=True)
    subprocess.run(cmd + list(packages), check=False)


def load_mujoco_model(mujoco, integrator="file"):
    m = mujoco.MjModel.from_xml_path(ANT)
    if integrator == "euler":
        m.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    return m


def integrator_name(mujoco, m):
    return mujoco.mjtIntegrator(m.opt.integrator).name.replace("mjINT_", "")


# --- backdrive -------------------------------------------------------------------------------


def ours(args):
    """Runs `backdrive bench` on the ant (or reads its JSON) and converts its figures."""
    if args.ours:
        with open(args.ours) as f:
            report = json.load(f)
    else:
        exe = args.backdrive or os.path.join(ROOT, "target", "release", "backdrive")
        if not os.path.exists(exe):
            subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ours.json")
            # --quick gives each forward case a 2 s budget (at least one call of 10 steps), like
            # the peers' --budget; the other options override its horizons.
            cmd = [exe, "bench", "--quick", "--models", "ant", "--json", path,
                   "--instances", ",".join(str(n) for n in args.instances),
                   "--steps", str(args.steps), "--gradient-steps", str(args.gradient_steps),
                   "--gradient-budget", str(args.gradient_budget),
                   "--fd-steps", str(args.gradient_steps)]
            print("  running:", " ".join(os.path.relpath(c, ROOT) if c == exe else c
                                         for c in cmd), flush=True)
            env = dict(os.environ, NODEVICE_SELECT="1")
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
            with open(path) as f:
                report = json.load(f)
    adapter = report["adapter"]["name"]
    out = Results(report.get("backdrive_version"))
    out["adapter"] = report["adapter"]
    for c in report["results"]:
        if c["model"] == "ant":
            out.row(throughput("backdrive", c["instances"], c["robot_steps_per_s"],
                                          0.01, adapter))
            print(f"  N={c['instances']:<6} {c['robot_steps_per_s']:>12,.0f} robot-steps/s")
    done = set()
    for g in report.get("gradient_results", []):
        if g["model"] != "ant":
            continue
        done.add(g["instances"])
        fwd = g["forward_seconds"]
        out.grad(gradient(
            "backdrive", g["instances"], g["steps"], "state, commands, physical parameters",
            fwd, fwd + g["backward_seconds"], "reverse pass of the whole rollout"))
        print(f"  gradient N={g['instances']:<6} {g['steps']} steps: (fwd+bwd)/fwd = "
              f"{1 + g['backward_over_forward']:.1f}")
    for n in args.instances:
        if n not in done:
            out.grad(gradient(
                "backdrive", n, None, "", note="skipped by `backdrive bench`: predicted over "
                f"the {args.gradient_budget} s gradient budget (--gradient-budget)"))
    out["fd"] = [f for f in report.get("fd_results", []) if f["model"] == "ant"]
    return out


# --- MuJoCo C ----------------------------------------------------------------------------------


def mujoco_section(args):
    """MuJoCo C: multithreaded rollouts, and the finite-difference rollout gradient."""
    try:
        import mujoco
        import numpy as np
        from mujoco import rollout
    except ImportError:
        return {"skipped": "mujoco is not installed (pip install mujoco, or pass --install)"}
    out = Results(mujoco.__version__)
    rng = np.random.default_rng(0)
    for integrator in ("file", "euler"):
        m = load_mujoco_model(mujoco, integrator)
        name = f"MuJoCo C {integrator_name(mujoco, m)}"
        d = mujoco.MjData(m)
        mujoco.mj_forward(m, d)
        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        state0 = np.zeros(mujoco.mj_stateSize(m, spec))
        mujoco.mj_getState(m, d, state0, spec)
        datas = [mujoco.MjData(m) for _ in range(args.threads)]
        for n in args.instances:
            # Calls of at most --steps steps and about a fifth of --budget each, timed by
            # timed() (median over the calls that fit in --budget).
            init = np.tile(state0, (n, 1))
            models = [m] * n
            probe = rng.uniform(-1, 1, (n, 10, m.nu))
            t0 = time.perf_counter()
            rollout.rollout(models, datas, init, probe, nstep=10)
            rate = n * 10 / (time.perf_counter() - t0)
            steps = int(max(10, min(args.steps, args.budget / 5 * rate / n)))
            ctrl = rng.uniform(-1, 1, (n, steps, m.nu))
            call = functools.partial(rollout.rollout, models, datas, init, ctrl)
            rate = n * steps / timed(call, args.budget)
            out.row(throughput(name, n, rate, m.opt.timestep,
                               f"mujoco.rollout, {args.threads} threads"))
            print(f"  {name:<16} N={n:<6} {rate:>12,.0f} robot-steps/s", flush=True)
        out.grad(mujoco_gradient(args, mujoco, m, name))
    return out


def mujoco_gradient(args, mujoco, m, name):
    """Times a rollout against the same rollout with one centred transition Jacobian per step
    and the backward sweep that turns them into d(final torso x)/d(controls, initial state)."""
    import numpy as np

    horizon = args.gradient_steps
    wrt = f"controls ({horizon}x{m.nu}), initial state"
    d = mujoco.MjData(m)
    ctrl = np.random.default_rng(1).uniform(-1, 1, (horizon, m.nu))
    nx = 2 * m.nv + m.na
    A = np.zeros((horizon, nx, nx))
    B = np.zeros((horizon, nx, m.nu))

    def forward():
        mujoco.mj_resetData(m, d)
        for t in range(horizon):
            d.ctrl[:] = ctrl[t]
            mujoco.mj_step(m, d)

    def forward_and_gradient():
        mujoco.mj_resetData(m, d)
        for t in range(horizon):
            d.ctrl[:] = ctrl[t]
            mujoco.mjd_transitionFD(m, d, 1e-6, 1, A[t], B[t], None, None)
            mujoco.mj_step(m, d)
        lam = np.zeros(nx)
        lam[0] = 1.0  # d(final torso x)/d(state); x is the first position coordinate
        grad_u = np.empty((horizon, m.nu))
        for t in reversed(range(horizon)):
            grad_u[t] = B[t].T @ lam
            lam = A[t].T @ lam
        return grad_u, lam

    try:
        forward_and_gradient()
    except Exception as e:  # MuJoCo refuses some integrators, e.g. RK4
        print(f"  {name:<16} gradient: not available ({e})", flush=True)
        return gradient(name, 1, horizon, wrt,
                        note=f"mjd_transitionFD refuses this integrator: {e}")
    tf, tg = timed_pair(forward, forward_and_gradient, args.budget)
    print(f"  {name:<16} gradient N=1, {horizon} steps: (fwd+grad)/fwd = {tg / tf:.1f}",
          flush=True)
    return gradient(name, 1, horizon, wrt, tf, tg,
                    "centred FD transition Jacobians + backward sweep, one thread; "
                    "per robot, so the same at every N")


# --- MJX ---------------------------------------------------------------------------------------


def mjx_section(args):
    """MuJoCo MJX on JAX's CPU back end: vmapped jitted rollouts and reverse-mode gradients."""
    try:
        import jax
        import jax.numpy as jnp
        import mujoco
        import numpy as np
    except ImportError as e:
        return {"skipped": f"{e.name} is not installed (pip install jax mujoco-mjx, or pass "
                           "--install)"}
    jax.config.update("jax_platforms", "cpu")
    # XLA takes a minute or more to compile each rollout on a small CPU; keep what it compiled
    # for the next run (the first run's compile times are printed in the notes).
    jax.config.update("jax_compilation_cache_dir", args.jax_cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    # mujoco-mjx imports warp-lang, when there is one, for its Warp back end; the JAX back end
    # measured here does not use it, and warp-lang < 1.10 breaks that import. Hide it.
    if "warp" not in sys.modules:
        sys.modules["warp"] = None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from mujoco import mjx
    except ImportError:
        return {"skipped": "mujoco-mjx is not installed (pip install mujoco-mjx, or pass "
                           "--install)"}
    from importlib.metadata import version

    out = Results(f"mujoco-mjx {version('mujoco-mjx')}, jax {jax.__version__}", args.child_out)
    m = load_mujoco_model(mujoco, args.mjx_integrator)
    name = f"MJX {integrator_name(mujoco, m)} (JAX CPU)"
    key = jax.random.PRNGKey(0)

    # Gradient first (a timed-out section keeps it): d(final torso x)/d(control sequence) in
    # reverse mode. The constraint solver's while_loop is not reverse-differentiable, so this
    # model takes one solver iteration, and so does the forward it is compared with.
    m1 = load_mujoco_model(mujoco, args.mjx_integrator)
    m1.opt.iterations = 1
    mx1 = mjx.put_model(m1)
    import numpy as np

    horizon = args.gradient_steps
    wrt = f"controls ({horizon}x{m.nu})"

    def loss(ctrl):
        def body(d, u):
            return mjx.step(mx1, d.replace(ctrl=u)), None
        return jax.lax.scan(body, mjx.make_data(mx1), ctrl)[0].qpos[0]

    fwd = jax.jit(jax.vmap(loss))
    fwd_grad = jax.jit(jax.vmap(jax.value_and_grad(loss)))

    def gradient_case(n):
        ctrl = jax.random.uniform(key, (n, horizon, m.nu), minval=-1, maxval=1)
        t0 = time.perf_counter()
        jax.block_until_ready(fwd(ctrl))
        jax.block_until_ready(fwd_grad(ctrl))
        compile_s = time.perf_counter() - t0
        tf, tg = timed_pair(lambda: jax.block_until_ready(fwd(ctrl)),
                            lambda: jax.block_until_ready(fwd_grad(ctrl)), args.budget)
        finite = bool(np.all(np.isfinite(np.asarray(fwd_grad(ctrl)[1]))))
        out.grad(gradient(
            name, n, horizon, wrt, tf, tg,
            f"jax.value_and_grad, opt.iterations = 1 (while_loop is not reverse-"
            f"differentiable), compile/cache load {compile_s:.0f} s, finite: {finite}"))
        print(f"  {name} gradient N={n}, {horizon} steps: (fwd+grad)/fwd = {tg / tf:.1f}, "
              f"finite: {finite} (compile {compile_s:.0f} s)", flush=True)

    for n in [int(x) for x in args.mjx_gradient_instances.split(",") if x]:
        try:
            gradient_case(n)
        except Exception as e:  # reported in the table instead of a number
            out.grad(gradient(name, n, horizon, wrt, note=f"failed: {e}"[:300]))
            print(f"  {name} gradient N={n}: failed: {str(e)[:200]}", flush=True)

    # Forward: the model as loaded (the file's solver settings), a jitted scan of --mjx-chunk
    # steps per call, vmapped over the batch; each N compiles anew.
    mx = mjx.put_model(m)
    chunk = args.mjx_chunk

    def roll(d, ctrl):
        def body(d, u):
            return mjx.step(mx, d.replace(ctrl=u)), None
        return jax.lax.scan(body, d, ctrl)[0]

    run = jax.jit(jax.vmap(roll))

    def hung(n, limit):
        out.row(throughput(name, n, None, m.opt.timestep,
                           f"hung: a call did not return within {limit:.0f} s, every thread "
                           "idle in XLA's CPU runtime"))
        print(f"  {name} N={n:<6} hung (no return within {limit:.0f} s); stopping", flush=True)
        os._exit(0)  # the calls cannot be cancelled; what was measured is saved

    def forward_case(n):
        d = jax.vmap(lambda _: mjx.make_data(mx))(jnp.arange(n))
        ctrl = jax.random.uniform(key, (n, chunk, m.nu), minval=-1, maxval=1)
        t0 = time.perf_counter()
        state = {"d": jax.block_until_ready(run(d, ctrl))}  # compiles for this N
        compile_s = time.perf_counter() - t0

        def call():
            state["d"] = jax.block_until_ready(run(state["d"], ctrl))

        # XLA's CPU runtime has hung here (every thread idle) at N = 1024 on two loaded cores;
        # record that instead of waiting for --section-timeout.
        limit = max(180.0, 10.0 * compile_s)
        watchdog = threading.Timer(limit, hung, (n, limit))
        watchdog.start()
        rate = n * chunk / timed(call, args.budget)
        watchdog.cancel()
        finite = bool(jnp.all(jnp.isfinite(state["d"].qpos)))
        out.row(throughput(name, n, rate, m.opt.timestep,
                           f"jit+vmap, {chunk}-step scan per call, compile/cache load "
                           f"{compile_s:.0f} s" + ("" if finite else ", NOT FINITE")))
        print(f"  {name} N={n:<6} {rate:>12,.0f} robot-steps/s (compile {compile_s:.0f} s)",
              flush=True)

    for n in args.instances:
        if n > args.mjx_max_n:
            out.row(throughput(name, n, None, m.opt.timestep,
                               f"skipped: N > --mjx-max-n {args.mjx_max_n}"))
        else:
            forward_case(n)
    return out


# --- Warp --------------------------------------------------------------------------------------


def warp_section(args):
    """NVIDIA Warp's warp.sim on Warp's CPU device: semi-implicit rollouts and wp.Tape."""
    if os.path.isdir(args.warp_dir):
        sys.path.insert(0, args.warp_dir)
    try:
        import numpy as np
        import warp as wp
    except ImportError:
        return {"skipped": f"warp-lang is not installed (pass --install to put {WARP_PIN} into "
                           f"{args.warp_dir})"}
    try:
        import warp.sim
    except ImportError:
        return {"skipped": f"warp-lang {wp.__version__} has no warp.sim (moved to the Newton "
                           f"project in 1.10); pass --install to put {WARP_PIN} into "
                           f"{args.warp_dir}"}
    wp.config.quiet = True
    wp.init()
    out = Results(f"warp-lang {wp.__version__}", args.child_out)
    device, dt = "cpu", args.warp_dt
    name = "Warp sim semi-implicit (CPU)"
    # warp.sim's importer requires every body to be named; the gymnasium ant leaves its legs
    # unnamed. Naming them changes nothing else.
    tree = ET.parse(ANT)
    for k, body in enumerate(tree.getroot().iter("body")):
        body.attrib.setdefault("name", f"body_{k}")
    xml = os.path.join(tempfile.mkdtemp(), "ant_named.xml")
    tree.write(xml)
    ant = warp.sim.ModelBuilder()
    warp.sim.parse_mjcf(xml, ant, floating=True, enable_self_collisions=False)
    bodies = ant.body_count

    def build(n, requires_grad):
        builder = warp.sim.ModelBuilder()
        for i in range(n):
            builder.add_builder(ant, xform=wp.transform((2.0 * i, 0.0, 0.0), wp.quat_identity()))
        model = builder.finalize(device=device, requires_grad=requires_grad)
        model.ground = True
        return model

    integrator = warp.sim.SemiImplicitIntegrator()

    def step(model, s_in, s_out, control):
        s_in.clear_forces()
        warp.sim.collide(model, s_in)
        integrator.simulate(model, s_in, s_out, dt, control)

    rng = np.random.default_rng(0)

    def actuate(control):
        act = rng.uniform(-0.5, 0.5, control.joint_act.shape)
        control.joint_act.assign(act.astype(np.float32))

    def forward_case(n):
        model = build(n, False)
        control = model.control()
        actuate(control)
        s = [model.state(), model.state()]
        t0 = time.perf_counter()
        step(model, s[0], s[1], control)  # compiles the kernels the first time ever (cached)
        wp.synchronize()
        first_s = time.perf_counter() - t0

        def call(k=10):
            for _ in range(k):
                step(model, s[0], s[1], control)
                s.reverse()
            wp.synchronize()

        rate = n * 10 / timed(call, args.budget)
        finite = bool(np.all(np.isfinite(s[0].body_q.numpy())))
        out.row(throughput(name, n, rate, dt, f"first step {first_s:.1f} s"
                           + ("" if finite else ", NOT FINITE")))
        print(f"  {name} N={n:<6} {rate:>12,.0f} robot-steps/s at dt {dt}", flush=True)

    for n in args.instances:
        if n > args.warp_max_n:
            out.row(throughput(name, n, None, dt,
                               f"skipped: N > --warp-max-n {args.warp_max_n}"))
        else:
            forward_case(n)

    @wp.kernel
    def torso_x(body_q: wp.array(dtype=wp.transform), stride: int, out: wp.array(dtype=float)):
        i = wp.tid()
        wp.atomic_add(out, 0, wp.transform_get_translation(body_q[i * stride])[0])

    horizon = args.gradient_steps
    wrt = "joint targets (constant)"

    def gradient_case(n):
        model = build(n, True)
        control = model.control(requires_grad=True)
        actuate(control)
        states = [model.state(requires_grad=True) for _ in range(horizon + 1)]
        loss = wp.zeros(1, dtype=float, requires_grad=True, device=device)

        def forward():
            loss.zero_()
            for k in range(horizon):
                step(model, states[k], states[k + 1], control)
            wp.launch(torso_x, dim=n, inputs=[states[-1].body_q, bodies], outputs=[loss],
                      device=device)
            wp.synchronize()

        def forward_and_gradient():
            tape = wp.Tape()
            with tape:
                forward()
            tape.backward(loss)
            wp.synchronize()
            return tape

        forward_and_gradient().zero()
        tf, tg = timed_pair(forward, lambda: forward_and_gradient().zero(), args.budget)
        tape = forward_and_gradient()
        g = control.joint_act.grad.numpy().copy()  # a view of memory that zero() clears
        tape.zero()
        finite = bool(np.all(np.isfinite(g)))
        nonzero = int(np.count_nonzero(g))
        out.grad(gradient(
            name, n, horizon, wrt, tf, tg,
            f"wp.Tape, one state per step, at dt {dt}; finite: {finite}, "
            f"{nonzero}/{g.size} entries nonzero"))
        print(f"  {name} gradient N={n}, {horizon} steps: (fwd+grad)/fwd = {tg / tf:.1f}, "
              f"finite: {finite}, nonzero {nonzero}/{g.size}", flush=True)

    for n in args.gradient_instances:
        if n > args.warp_max_n:
            continue
        try:
            gradient_case(n)
        except Exception as e:  # reported in the table instead of a number
            out.grad(gradient(name, n, horizon, wrt, note=f"failed: {e}"[:300]))
            print(f"  {name} gradient N={n}: failed: {str(e)[:200]}", flush=True)
    return out


# --- driver ------------------------------------------------------------------------------------


def in_child(section, args):
    """Runs a section in a child process with a time limit; returns what it wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "section.json")
        cmd = [sys.executable, os.path.abspath(__file__), *sys.argv[1:],
               "--child", section, "--child-out", path]
        timed_out = False
        try:
            subprocess.run(cmd, timeout=args.section_timeout, check=False)
        except subprocess.TimeoutExpired:
            timed_out = True
        if not os.path.exists(path):
            return {"skipped": f"timed out after --section-timeout {args.section_timeout:g} s"
                    if timed_out else "the child process failed (see its output above)"}
        with open(path) as f:
            result = json.load(f)
        if timed_out:
            result["incomplete"] = (f"stopped by --section-timeout {args.section_timeout:g} s; "
                                    "the cases after the last one shown are missing")
        return result


def install(peers, args):
    """pip-installs what the chosen sections lack."""
    from importlib.metadata import PackageNotFoundError, version

    def missing(package):
        try:
            version(package)
            return False
        except PackageNotFoundError:
            return True

    wanted = []
    if {"mujoco", "mjx"} & set(peers):
        wanted.append("mujoco")
    if "mjx" in peers:
        wanted += ["jax", "mujoco-mjx"]
    wanted = [p for p in wanted if missing(p)]
    if wanted:
        pip_install(*wanted)
    if "warp" in peers and not os.path.isdir(os.path.join(args.warp_dir, "warp")):
        pip_install(WARP_PIN, target=args.warp_dir)


def fmt(x, spec=",.0f"):
    return "-" if x is None else format(x, spec)


def print_tables(report):
    rows = report["rows"]
    ns = sorted({r["N"] for r in rows})
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    print("\nForward throughput, robot-steps/s (simulated robot-seconds per wall second in "
          "brackets):")
    head = f"{'engine':<36} {'dt':>7}" + "".join(f" {'N = ' + str(n):>20}" for n in ns)
    print(head)
    for e in engines:
        cells = {r["N"]: r for r in rows if r["engine"] == e}
        dt = next(iter(cells.values()))["dt"]
        line = f"{e:<36} {dt:>7g}"
        for n in ns:
            r = cells.get(n)
            if r is None or r["robot_steps_per_s"] is None:
                line += f" {'-':>20}"
            else:
                cell = f"{fmt(r['robot_steps_per_s'])} ({r['sim_s_per_wall_s']:.2f})"
                line += f" {cell:>20}"
        print(line)
    print("\nGradient cost, (forward + gradient) / forward, same horizon and batch:")
    print(f"{'engine':<36} {'N':>5} {'H':>4} {'fwd s':>9} {'fwd+grad s':>11} {'ratio':>7}  "
          "with respect to; note")
    for g in report["gradients"]:
        print(f"{g['engine']:<36} {g['N']:>5} {fmt(g['horizon'], 'd'):>4} "
              f"{fmt(g['forward_s'], '.4f'):>9} {fmt(g['forward_plus_gradient_s'], '.4f'):>11} "
              f"{fmt(g['ratio'], '.1f'):>7}  {g['wrt']}; {g['note']}")
    for f in report.get("backdrive_fd", []):
        print(f"\nbackdrive: analytic gradient over {f['parameters']} physical parameters, "
              f"{f['steps']} steps, {f['analytic_seconds']:.3f} s; central finite differences "
              f"({f['fd_instances']} robots batched) {f['fd_seconds']:.3f} s "
              f"({f['fd_over_analytic']:.1f}x), cosine {f['cosine']:.3f}")
    for name, reason in report["skipped"].items():
        print(f"{name}: skipped: {reason}")
    for name, reason in report["incomplete"].items():
        print(f"{name}: incomplete: {reason}")


def cpu_model():
    """The processor's name (Linux), else what platform reports."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="N = 1, 128, 1 s budgets, 10-step gradients")
    p.add_argument("--skip", default="", help="sections to leave out: ours, mujoco, mjx, warp")
    p.add_argument("--install", action="store_true",
                   help=f"pip install missing packages (jax, mujoco-mjx, mujoco; {WARP_PIN} "
                        "into --warp-dir)")
    p.add_argument("--ours", help="read backdrive's numbers from this `backdrive bench` JSON")
    p.add_argument("--backdrive", help="path of the backdrive binary (default target/release)")
    p.add_argument("--instances", default=None, help="batch sizes (default 1,128,1024)")
    p.add_argument("--gradient-instances", default="1,128",
                   help="batch sizes of Warp's gradient; MJX has --mjx-gradient-instances, "
                        "backdrive's follow --instances and --gradient-budget, and MuJoCo C's "
                        "is per robot (N = 1)")
    p.add_argument("--steps", type=int, default=200,
                   help="most steps of a forward case (each also stops after --budget s)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds of measurement per case, after compilation (default 3)")
    p.add_argument("--gradient-steps", type=int, default=None,
                   help="horizon H of the gradient measurement (default 30)")
    p.add_argument("--gradient-budget", type=float, default=30,
                   help="backdrive bench's --gradient-budget (seconds per gradient case)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="MuJoCo C rollout threads")
    p.add_argument("--mjx-integrator", choices=("euler", "file"), default="euler",
                   help="MJX integrator: Euler (default; compiles in half the time of the "
                        "file's RK4)")
    p.add_argument("--mjx-chunk", type=int, default=10, help="MJX steps per jitted call")
    p.add_argument("--mjx-max-n", type=int, default=1024, help="largest N given to MJX")
    p.add_argument("--mjx-gradient-instances", default="128",
                   help="batch sizes of MJX's gradient (each compiles for a minute or more)")
    p.add_argument("--jax-cache", default=os.path.join(CACHE, "jax"),
                   help="JAX's persistent compilation cache")
    p.add_argument("--warp-max-n", type=int, default=1024, help="largest N given to Warp")
    p.add_argument("--warp-dt", type=float, default=1e-4,
                   help="Warp's time step (its semi-implicit ant needs a small one)")
    p.add_argument("--warp-dir", default=DEFAULT_WARP_DIR,
                   help=f"folder holding {WARP_PIN} (pip install --target)")
    p.add_argument("--section-timeout", type=float, default=420,
                   help="seconds the MJX and Warp child processes may run each (a section "
                        "stopped by it reports the cases it finished)")
    p.add_argument("--json", help="write every figure here")
    p.add_argument("--child", choices=("mjx", "warp"), help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.instances is None:
        args.instances = "1,128" if args.quick else "1,128,1024"
    args.instances = [int(x) for x in args.instances.split(",")]
    args.gradient_instances = [int(x) for x in args.gradient_instances.split(",")]
    if args.budget is None:
        args.budget = 1.0 if args.quick else 3.0
    if args.gradient_steps is None:
        args.gradient_steps = 10 if args.quick else 30

    if args.child:
        result = {"mjx": mjx_section, "warp": warp_section}[args.child](args)
        with open(args.child_out, "w") as f:
            json.dump(result, f)
        return

    skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    peers = [s for s in SECTIONS if s not in skip]
    if args.install:
        install(peers, args)
    report = {"machine": {"cpus": os.cpu_count(), "processor": cpu_model(),
                          "python": platform.python_version(),
                          "load_average_at_start": os.getloadavg()},
              "model": os.path.relpath(ANT, ROOT), "args": {k: v for k, v in vars(args).items()
                                                            if not k.startswith("child")},
              "versions": {}, "rows": [], "gradients": [], "skipped": {},
              "incomplete": {}}
    started = time.perf_counter()
    for section in peers:
        title = {"ours": "backdrive", "mujoco": "MuJoCo C", "mjx": "MuJoCo MJX (JAX, CPU)",
                 "warp": "NVIDIA Warp (warp.sim, CPU)"}[section]
        print(f"{title}:", flush=True)
        t0 = time.perf_counter()
        if section == "ours":
            result = ours(args)
            report["backdrive_fd"] = result.pop("fd")
        elif section == "mujoco":
            result = mujoco_section(args)
        else:
            result = in_child(section, args)
        if "skipped" in result:
            print(f"  skipped: {result['skipped']}", flush=True)
            report["skipped"][title] = result["skipped"]
            continue
        if "incomplete" in result:
            print(f"  {result['incomplete']}", flush=True)
            report["incomplete"][title] = result["incomplete"]
        report["versions"][title] = result.get("version")
        if section == "ours":
            report["versions"]["backdrive adapter"] = result["adapter"]["description"]
        report["rows"] += result["rows"]
        report["gradients"] += result["gradients"]
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    report["seconds"] = time.perf_counter() - started
    report["machine"]["load_average_at_end"] = os.getloadavg()
    print_tables(report)
    print(f"\nversions: {json.dumps(report['versions'])}")
    print(f"{report['machine']['processor']}, {os.cpu_count()} CPUs")
    print(f"{report['seconds']:.0f} s in all; load average at start "
          f"{report['machine']['load_average_at_start'][0]:.1f}, at end "
          f"{report['machine']['load_average_at_end'][0]:.1f} on {os.cpu_count()} CPUs")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print("wrote", args.json)


if __name__ == "__main__":
    main()
