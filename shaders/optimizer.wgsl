// Parameter updates on the GPU: a deterministic global gradient norm (one workgroup, fixed
// summation order) and Adam or SGD with momentum, with the gradient scaled by 1 / batch and
// clipped to a maximal global norm. Standalone: it shares no bindings with the physics.

struct Optimizer {
    n_params: u32, kind: u32, step: u32, pad0: u32,
    learning_rate: f32, beta1: f32, beta2: f32, epsilon: f32,
    grad_scale: f32, max_norm: f32, momentum: f32, pad1: f32,
}

@group(0) @binding(0) var<uniform> opt: Optimizer;
@group(0) @binding(1) var<storage, read_write> theta: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> first_moment: array<f32>;
@group(0) @binding(4) var<storage, read_write> second_moment: array<f32>;
@group(0) @binding(5) var<storage, read_write> norm_out: array<f32>;

var<workgroup> partial: array<f32, 256>;

// The norm is taken as m * |g / m| with m the largest |g|, so that gradients beyond 1e19 (they
// explode through long contact-rich rollouts) do not overflow the sum of squares: the norm is
// then still finite and clipping still works. Two passes of the same fixed-order reduction.
@compute @workgroup_size(256)
fn gradient_norm(@builtin(local_invocation_id) lid: vec3<u32>) {
    var largest = 0.0;
    for (var k = lid.x; k < opt.n_params; k += 256u) {
        largest = max(largest, abs(grads[k] * opt.grad_scale));
    }
    partial[lid.x] = largest;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            partial[lid.x] = max(partial[lid.x], partial[lid.x + stride]);
        }
        workgroupBarrier();
    }
    let scale = partial[0];
    workgroupBarrier();
    // An all-zero gradient has norm 0; a NaN or infinite entry makes the norm non-finite.
    let inverse = select(1.0 / scale, 1.0, scale == 0.0);
    var sum = 0.0;
    for (var k = lid.x; k < opt.n_params; k += 256u) {
        let g = grads[k] * opt.grad_scale * inverse;
        sum += g * g;
    }
    partial[lid.x] = sum;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            partial[lid.x] += partial[lid.x + stride];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        norm_out[0] = select(scale * sqrt(partial[0]), 0.0, scale == 0.0);
    }
}

@compute @workgroup_size(64)
fn apply_update(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = gid.x;
    if (k >= opt.n_params) {
        return;
    }
    let norm = norm_out[0];
    let clip = select(1.0, opt.max_norm / norm, opt.max_norm > 0.0 && norm > opt.max_norm);
    let g = grads[k] * opt.grad_scale * clip;
    let t = f32(opt.step);
    if (opt.kind == 0u) {
        let m = opt.beta1 * first_moment[k] + (1.0 - opt.beta1) * g;
        let v = opt.beta2 * second_moment[k] + (1.0 - opt.beta2) * g * g;
        first_moment[k] = m;
        second_moment[k] = v;
        let m_hat = m / (1.0 - pow(opt.beta1, t));
        let v_hat = v / (1.0 - pow(opt.beta2, t));
        theta[k] -= opt.learning_rate * m_hat / (sqrt(v_hat) + opt.epsilon);
    } else {
        let m = opt.momentum * first_moment[k] + g;
        first_moment[k] = m;
        theta[k] -= opt.learning_rate * m;
    }
    grads[k] = 0.0;
}
