"""Overhead of the Python binding: `Simulator.step(k)` from Python against the same Rust call.

Both run in this process on the same GPU, interleaved (Rust, Python, Rust, Python...) so that
the load of the machine hits both alike; each side gets one untimed warm-up call. Also times
a state read (`body_states()`) and reports how many host copies it makes.

    python python/bench/overhead.py [--model quadruped] [--n 4096] [--steps 10] [--repeats 3]
"""

import argparse
import statistics
import time

import numpy as np

import backdrive
from backdrive import _backdrive


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="quadruped")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    model = backdrive.load(args.model)
    sim = backdrive.Simulator(model, args.n)
    sim.step(args.steps)
    py_times, rust_times = [], []
    for _ in range(args.repeats):
        rust_times += _backdrive.bench_rust_step(model, args.n, args.steps, 1)
        t = time.perf_counter()
        sim.step(args.steps)
        py_times.append(time.perf_counter() - t)
    rust, py = statistics.median(rust_times), statistics.median(py_times)
    print(f"adapter: {backdrive.adapter_info()}")
    print(f"{args.model}, n = {args.n}, step({args.steps}), {args.repeats} interleaved calls each")
    print(f"  Rust   Simulator::step: median {rust:.4f} s  ({', '.join(f'{x:.4f}' for x in rust_times)})")
    print(f"  Python Simulator.step:  median {py:.4f} s  ({', '.join(f'{x:.4f}' for x in py_times)})")
    print(f"  overhead: {100 * (py / rust - 1):+.2f} % (median against median)")
    reads = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        s = sim.body_states()
        reads.append(time.perf_counter() - t)
    raw = sim.state_raw()
    views = all(not f.flags.owndata and np.may_share_memory(f, s.position) for f in s)
    print(f"  body_states(): median {statistics.median(reads):.4f} s for {raw.nbytes / 2**20:.1f} MiB;"
          f" named arrays are views of the raw read: {views}")


if __name__ == "__main__":
    main()
