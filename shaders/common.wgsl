// Bindings, buffer accessors and quaternion math shared by every stage.
//
// Per-instance arrays are instance-blocked (see `instance_index`), so that neighbouring
// invocations touch neighbouring addresses and one instance's slots stay close together
// whatever the batch size. Field order of Header matches `layout::Header` on the host.

struct Header {
    n_instances: u32, n_bodies: u32, n_joints: u32, n_lock: u32,
    n_limit: u32, n_servo: u32, n_force: u32, n_contacts: u32,
    n_pairs: u32, n_rows: u32, sweeps: u32, steps: u32,
    state_len: u32, param_len: u32, n_commands: u32, off_joint: u32,
    off_lock: u32, off_limit: u32, off_servo: u32, off_force: u32,
    off_contact: u32, off_pair: u32, off_row: u32, row_limit: u32,
    row_servo: u32, row_contact: u32, row_pair: u32, p_contact: u32,
    p_actuator: u32, p_joint: u32, p_pair: u32, state_lambda: u32,
    dt: f32, gravity_x: f32, gravity_y: f32, gravity_z: f32,
    warm_start: f32, joint_mass_scale: f32, joint_cfm_scale: f32, joint_erp: f32,
    contact_mass_scale: f32, contact_cfm_scale: f32, contact_erp: f32, restitution_threshold: f32,
    command_base_step: u32, command_step_stride: u32, adj_state: u32, adj_params: u32,
    adj_commands: u32, adj_rows: u32, adj_history: u32, adj_saved: u32,
    adj_start: u32, adj_len: u32, n_loss_terms: u32, loss_step: u32,
    horizon: u32, gradient_decay: f32, adj_nonfinite: u32, param_gradients: u32,
    n_world_contacts: u32, off_world_contact: u32, row_world_contact: u32, p_world_contact: u32,
    n_passive: u32, off_passive: u32, row_passive: u32, n_tendon: u32,
    n_tendon_terms: u32, off_tendon: u32, off_tendon_term: u32, row_tendon: u32,
    n_fluid: u32, off_fluid: u32, fluid_density: f32, fluid_viscosity: f32,
    command_width: u32, row_width: u32, limit_mass_scale: f32, limit_cfm_scale: f32,
    limit_erp: f32, first_instance: u32, off_impedance: u32, impedance_rows: u32,
}

// BODY_STATE_LEN, BODY_PARAM_LEN, ROW_LEN, UNBOUNDED and the record sizes (JOINT_RECORD_LEN,
// ...) come from the prelude that src/engine/shaders.rs generates from the Rust constants, and so do
// ROW_VEC4S (a row's scratch is 8 vec4 records, see solver.wgsl: one load per record in the
// sweeps) and the private solver bounds PRIVATE_SOLVER_BODIES, _ROWS and _VELOCITIES.

@group(0) @binding(0) var<uniform> hdr: Header;
// Binding 1, the packed model table, and its accessor `model_u32` are generated
// (src/engine/shaders.rs, `ModelBinding`): a uniform block where the table fits, else storage.
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> commands: array<f32>;
@group(0) @binding(5) var<storage, read_write> rows: array<vec4<f32>>;
// Adjoint kernels only: per instance, regions (offsets in the header) for the adjoint of the
// state, the parameters, this step's commands and the rows, the sweep history of the impulses,
// the state before the solve and the state at the start of the step.
@group(0) @binding(6) var<storage, read_write> adjoint: array<f32>;
// The solver's tape (the taped forward and the adjoint kernel only; see `tape_index` in
// solver.wgsl) and where in it the steps lie.
struct TapePlan { window: u32, width: u32, recorded: u32, pad: u32, }
@group(0) @binding(16) var<storage, read_write> tape: array<f32>;
@group(0) @binding(17) var<uniform> tape_plan: TapePlan;

fn model_f32(k: u32) -> f32 { return bitcast<f32>(model_u32(k)); }
fn model_vec3(k: u32) -> vec3<f32> { return vec3<f32>(model_f32(k), model_f32(k + 1u), model_f32(k + 2u)); }
fn model_quat(k: u32) -> vec4<f32> { return vec4<f32>(model_vec3(k), model_f32(k + 3u)); }

// Where slot `slot` of instance i lies in a per-instance array `width` wide: blocks of
// INSTANCE_BLOCK instances (a workgroup's), slot-major within a block, a chunk shorter than a
// block being one block of its own length. The host's transposition (`buffers::device_index`
// in src/engine/buffers.rs) computes the same; the accessors below are the only places the
// kernels index per-instance arrays.
fn instance_index(width: u32, slot: u32, i: u32) -> u32 {
    let lanes = min(INSTANCE_BLOCK, hdr.n_instances);
    return ((i / INSTANCE_BLOCK) * width + slot) * lanes + i % INSTANCE_BLOCK;
}

fn state_get(slot: u32, i: u32) -> f32 { return state[instance_index(hdr.state_len, slot, i)]; }
fn state_set(slot: u32, i: u32, v: f32) { state[instance_index(hdr.state_len, slot, i)] = v; }
fn state_vec3(slot: u32, i: u32) -> vec3<f32> {
    return vec3<f32>(state_get(slot, i), state_get(slot + 1u, i), state_get(slot + 2u, i));
}
fn state_set_vec3(slot: u32, i: u32, v: vec3<f32>) {
    state_set(slot, i, v.x); state_set(slot + 1u, i, v.y); state_set(slot + 2u, i, v.z);
}
fn state_quat(slot: u32, i: u32) -> vec4<f32> { return vec4<f32>(state_vec3(slot, i), state_get(slot + 3u, i)); }
fn state_set_quat(slot: u32, i: u32, q: vec4<f32>) { state_set_vec3(slot, i, q.xyz); state_set(slot + 3u, i, q.w); }

fn param(slot: u32, i: u32) -> f32 { return params[instance_index(hdr.param_len, slot, i)]; }
fn param_vec3(slot: u32, i: u32) -> vec3<f32> {
    return vec3<f32>(param(slot, i), param(slot + 1u, i), param(slot + 2u, i));
}
// Commands are a sequence of steps (or one step repeated, stride 0); `step_in_dispatch` is the
// step the current dispatch is on.
var<private> step_in_dispatch: u32;
fn command_slot(a: u32) -> u32 {
    return (hdr.command_base_step + step_in_dispatch * hdr.command_step_stride) * hdr.n_commands + a;
}
fn command(a: u32, i: u32) -> f32 { return commands[instance_index(hdr.command_width, command_slot(a), i)]; }
// Writes slot `slot` of the commands array (the policy's output).
fn command_set_slot(slot: u32, i: u32, v: f32) { commands[instance_index(hdr.command_width, slot, i)] = v; }

// Row field f (numbered as in solver.wgsl) as (record, component): the four vec3 of the
// Jacobian and the four of M^-1 J^T fill records 0-7's xyz, the six scalars 0-5's w.
fn row_field(f: u32) -> vec2<u32> {
    return select(vec2<u32>(f / 3u, f % 3u), vec2<u32>(f - 24u, 3u), f >= 24u);
}
// The rows array is blocked in vec4 records: row_width records per instance (n_rows *
// ROW_VEC4S, twice that where the adjoint keeps the row adjoints after the rows).
fn row_index(r: u32, k: u32, i: u32) -> u32 { return instance_index(hdr.row_width, r * ROW_VEC4S + k, i); }
fn row_record(r: u32, k: u32, i: u32) -> vec4<f32> { return rows[row_index(r, k, i)]; }
fn row_get(r: u32, f: u32, i: u32) -> f32 {
    let at = row_field(f);
    return rows[row_index(r, at.x, i)][at.y];
}
fn row_set(r: u32, f: u32, i: u32, v: f32) {
    let at = row_field(f);
    rows[row_index(r, at.x, i)][at.y] = v;
}
// f is one of the vec3 fields 0, 3, ..., 21: one record's xyz.
fn row_vec3(r: u32, f: u32, i: u32) -> vec3<f32> { return row_record(r, f / 3u, i).xyz; }
fn row_set_vec3(r: u32, f: u32, i: u32, v: vec3<f32>) {
    row_set(r, f, i, v.x); row_set(r, f + 1u, i, v.y); row_set(r, f + 2u, i, v.z);
}

// Body state slots.
fn body_slot(b: u32) -> u32 { return b * BODY_STATE_LEN; }
fn body_position(b: u32, i: u32) -> vec3<f32> { return state_vec3(body_slot(b), i); }
fn body_orientation(b: u32, i: u32) -> vec4<f32> { return state_quat(body_slot(b) + 3u, i); }
fn body_velocity(b: u32, i: u32) -> vec3<f32> { return state_vec3(body_slot(b) + 7u, i); }
fn body_angular_velocity(b: u32, i: u32) -> vec3<f32> { return state_vec3(body_slot(b) + 10u, i); }
fn body_inverse_mass(b: u32, i: u32) -> f32 { return param(b * BODY_PARAM_LEN, i); }
fn body_inverse_inertia(b: u32, i: u32) -> vec3<f32> { return param_vec3(b * BODY_PARAM_LEN + 1u, i); }

// Quaternions are vec4 (x, y, z, w).
fn quat_mul(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(
        a.w * b.xyz + b.w * a.xyz + cross(a.xyz, b.xyz),
        a.w * b.w - dot(a.xyz, b.xyz),
    );
}
fn quat_conj(q: vec4<f32>) -> vec4<f32> { return vec4<f32>(-q.xyz, q.w); }
fn quat_rotate(q: vec4<f32>, v: vec3<f32>) -> vec3<f32> {
    let t = 2.0 * cross(q.xyz, v);
    return v + q.w * t + cross(q.xyz, t);
}

// Rotation vector (axis times angle) of a unit quaternion, taking the shorter way round.
fn quat_log(q_in: vec4<f32>) -> vec3<f32> {
    let q = q_in * select(1.0, -1.0, q_in.w < 0.0);
    let n = length(q.xyz);
    let scale = select(2.0 / q.w, 2.0 * atan2(n, q.w) / max(n, 1.0e-6), n > 1.0e-6);
    return q.xyz * scale;
}

// World-frame inverse inertia applied to a vector: R diag(inv_inertia) R^T v.
fn inverse_inertia_mul(q: vec4<f32>, inv_inertia: vec3<f32>, v: vec3<f32>) -> vec3<f32> {
    return quat_rotate(q, inv_inertia * quat_rotate(quat_conj(q), v));
}

// ---- Adjoint accessors: `*_add` accumulate, as every adjoint is a sum over uses.

fn adj_get(slot: u32, i: u32) -> f32 { return adjoint[instance_index(hdr.adj_len, slot, i)]; }
fn adj_set(slot: u32, i: u32, v: f32) { adjoint[instance_index(hdr.adj_len, slot, i)] = v; }
fn adj_add(slot: u32, i: u32, v: f32) { adj_set(slot, i, adj_get(slot, i) + v); }
fn adj_vec3(slot: u32, i: u32) -> vec3<f32> {
    return vec3<f32>(adj_get(slot, i), adj_get(slot + 1u, i), adj_get(slot + 2u, i));
}
fn adj_add_vec3(slot: u32, i: u32, v: vec3<f32>) {
    adj_add(slot, i, v.x); adj_add(slot + 1u, i, v.y); adj_add(slot + 2u, i, v.z);
}
fn adj_add_quat(slot: u32, i: u32, q: vec4<f32>) { adj_add_vec3(slot, i, q.xyz); adj_add(slot + 3u, i, q.w); }

fn state_adj_add_vec3(slot: u32, i: u32, v: vec3<f32>) { adj_add_vec3(hdr.adj_state + slot, i, v); }
fn state_adj_add_quat(slot: u32, i: u32, q: vec4<f32>) { adj_add_quat(hdr.adj_state + slot, i, q); }
fn state_adj_vec3(slot: u32, i: u32) -> vec3<f32> { return adj_vec3(hdr.adj_state + slot, i); }
// Parameter gradients are opt-in: when off, no memory is touched (a uniform branch).
fn param_adj_add(slot: u32, i: u32, v: f32) {
    if (hdr.param_gradients == 0u) {
        return;
    }
    adj_add(hdr.adj_params + slot, i, v);
}
fn param_adj_add_vec3(slot: u32, i: u32, v: vec3<f32>) {
    param_adj_add(slot, i, v.x); param_adj_add(slot + 1u, i, v.y); param_adj_add(slot + 2u, i, v.z);
}
fn command_adj_add(a: u32, i: u32, v: f32) { adj_add(hdr.adj_commands + a, i, v); }
// Row adjoints: in the adjoint kernel's rows buffer after the rows (from row hdr.adj_rows), in
// the rows' vec4 record layout, so that the reverse sweeps read and write whole records. Each
// accumulator starts at +0 and only ever has values added, so it is never -0 and adding +0 to
// a record's unused w leaves its bits alone.
fn row_adj_record(r: u32, k: u32, i: u32) -> vec4<f32> { return row_record(hdr.adj_rows + r, k, i); }
fn row_adj_set_record(r: u32, k: u32, i: u32, v: vec4<f32>) {
    rows[row_index(hdr.adj_rows + r, k, i)] = v;
}
fn row_adj_get(r: u32, f: u32, i: u32) -> f32 { return row_get(hdr.adj_rows + r, f, i); }
fn row_adj_add(r: u32, f: u32, i: u32, v: f32) { row_set(hdr.adj_rows + r, f, i, row_adj_get(r, f, i) + v); }
fn row_adj_vec3(r: u32, f: u32, i: u32) -> vec3<f32> { return row_vec3(hdr.adj_rows + r, f, i); }
// f is one of the vec3 fields 0, 3, ..., 21 (a record's xyz; its w gets +0).
fn row_adj_add_vec3(r: u32, f: u32, i: u32, v: vec3<f32>) {
    let k = f / 3u;
    row_adj_set_record(r, k, i, row_adj_record(r, k, i) + vec4<f32>(v, 0.0));
}

// ---- Adjoints of the math helpers (vector-Jacobian products).

struct QuatPair { a: vec4<f32>, b: vec4<f32>, }
struct QuatVec { q: vec4<f32>, v: vec3<f32>, }
struct InertiaAdjoint { q: vec4<f32>, inv_inertia: vec3<f32>, v: vec3<f32>, }

fn quat_mul_adjoint(a: vec4<f32>, b: vec4<f32>, g: vec4<f32>) -> QuatPair {
    var out: QuatPair;
    out.a = vec4<f32>(b.w * g.xyz + cross(b.xyz, g.xyz) - b.xyz * g.w, dot(b.xyz, g.xyz) + b.w * g.w);
    out.b = vec4<f32>(a.w * g.xyz + cross(g.xyz, a.xyz) - a.xyz * g.w, dot(a.xyz, g.xyz) + a.w * g.w);
    return out;
}

fn quat_rotate_adjoint(q: vec4<f32>, v: vec3<f32>, g: vec3<f32>) -> QuatVec {
    let u = q.xyz;
    let t = 2.0 * cross(u, v);
    let dt = q.w * g + cross(g, u);
    var out: QuatVec;
    out.q = vec4<f32>(cross(t, g) + 2.0 * cross(v, dt), dot(g, t));
    out.v = g + 2.0 * cross(dt, u);
    return out;
}

fn quat_log_adjoint(q_in: vec4<f32>, g: vec3<f32>) -> vec4<f32> {
    let s = select(1.0, -1.0, q_in.w < 0.0);
    let q = q_in * s;
    let n = length(q.xyz);
    let big = n > 1.0e-6;
    let n_safe = max(n, 1.0e-6);
    let at = atan2(n_safe, q.w);
    let r2 = n_safe * n_safe + q.w * q.w;
    let scale = select(2.0 / q.w, 2.0 * at / n_safe, big);
    let dscale_dn = select(0.0, 2.0 * (q.w / r2) / n_safe - 2.0 * at / (n_safe * n_safe), big);
    let dscale_dw = select(-2.0 / (q.w * q.w), 2.0 * (-n_safe / r2) / n_safe, big);
    let dscale = dot(q.xyz, g);
    let dv = g * scale + q.xyz * (dscale * dscale_dn / n_safe);
    return vec4<f32>(dv, dscale * dscale_dw) * s;
}

fn quat_normalize_adjoint(input: vec4<f32>, out: vec4<f32>, g: vec4<f32>) -> vec4<f32> {
    return (g - out * dot(out, g)) / length(input);
}

fn inverse_inertia_mul_adjoint(q: vec4<f32>, inv_inertia: vec3<f32>, v: vec3<f32>, g: vec3<f32>) -> InertiaAdjoint {
    let local = quat_rotate(quat_conj(q), v);
    let scaled = inv_inertia * local;
    let outer = quat_rotate_adjoint(q, scaled, g);
    let dlocal = outer.v * inv_inertia;
    let inner = quat_rotate_adjoint(quat_conj(q), v, dlocal);
    var out: InertiaAdjoint;
    out.q = outer.q + quat_conj(inner.q);
    out.inv_inertia = outer.v * local;
    out.v = inner.v;
    return out;
}
