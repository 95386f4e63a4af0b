#!/usr/bin/env bash
# One short, prepared benchmark run for a machine with a GPU (issue 14), run from the
# repository root:  benches/gpu.sh [OUT_DIR]
#
# 1. Makes Vulkan reachable: if no libvulkan is installed, unpacks the loader .debs carried in
#    .gl/ (fetched beforehand on the build machine with
#    `apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2`) and
#    points the loader at the NVIDIA ICD where the driver ships one outside the default path.
# 2. Builds backdrive (release) unless target/release/backdrive is already there.
# 3. Prints `backdrive info`, the private memory the step kernels ask for per invocation
#    (layout::PRIVATE_SOLVER_*), and runs `backdrive bench --json` on the quadruped and the ant
#    at N = 1 to 65,536, with the forward/backward ratio at N = 1,024 and T = 1,000.
# Everything lands in OUT_DIR (default: $OUT if set, else out/gpu).
set -euo pipefail
out="${1:-${OUT:-out/gpu}}"
mkdir -p "$out"

if ! ldconfig -p | grep -q libvulkan; then
    if compgen -G ".gl/*.deb" > /dev/null; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    else
        echo "no libvulkan and no .gl/*.deb to unpack: wgpu may fall back to GL or fail" >&2
    fi
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$nvidia_icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
    export VK_DRIVER_FILES="$nvidia_icd"
fi
export NODEVICE_SELECT=1
export BACKDRIVE_BACKEND="${BACKDRIVE_BACKEND:-vulkan}"

bin=target/release/backdrive
if [ ! -x "$bin" ]; then
    cargo build --release
fi

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || true
    "$bin" info
} 2>&1 | tee "$out/info.txt"

# The private arrays in shaders/solver.wgsl: forward 2 x BODIES vec3 (16-byte stride) and
# ROWS f32; the adjoint twice the velocities and two ROWS arrays (impulse adjoints, impulses).
consts=$(grep -E 'pub const PRIVATE_SOLVER_(BODIES|ROWS)' src/engine/layout/mod.rs | sed -E 's/.*(BODIES|ROWS): u32 = ([0-9]+);/\1=\2/')
eval "$consts"
echo "private memory per invocation: forward $((2 * BODIES * 16 + ROWS * 4)) bytes, adjoint \
$((4 * BODIES * 16 + 2 * ROWS * 4)) bytes (bodies <= $BODIES, rows <= $ROWS)" | tee "$out/private_memory.txt"

# --quick keeps each forward case (and its CPU twin row) to 2 s; the gradient cases get 60 s.
timeout 420 "$bin" bench --quick --models quadruped,ant --instances 1,128,1024,4096,16384,65536 \
    --steps 1000 --gradient-steps 1000 --gradient-budget 60 --fd-steps 10 \
    --json "$out/bench.json" 2>&1 \
    | tee "$out/bench.txt"
