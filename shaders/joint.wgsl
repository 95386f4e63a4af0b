// Joints. Every joint kind is a joint frame attached to both bodies whose six axes
// (x, y, z translation, then x, y, z rotation; x is the joint axis) are locked or free:
//   ball   locks translation,            hinge locks all but rotation about x,
//   slider locks all but translation x,  fixed locks all six.
// A locked axis is an equality row that drives its coordinate to zero; a limited free axis
// is a one-sided row on whichever bound is nearer; actuators (actuator.wgsl) drive free axes.

struct JointAxis {
    jac: RowJacobian,
    // Current value of the axis coordinate: a displacement (m) or a rotation angle (rad).
    coordinate: f32,
}

fn joint_record(j: u32) -> u32 { return hdr.off_joint + j * 12u; }

// Jacobian and coordinate of axis k (0..6) of joint j.
fn joint_axis(j: u32, k: u32, i: u32) -> JointAxis {
    return joint_frame_axis(joint_frame(j, i), k);
}

// What joint_axis computes before it picks the axis: a joint's lock rows are consecutive and
// share it, and its loads of the bodies' states are scalarised on a CPU driver.
struct JointFrame {
    qa: vec4<f32>, qb: vec4<f32>,
    arm_a: vec3<f32>, arm_b: vec3<f32>,
    frame_a: vec4<f32>, frame_b: vec4<f32>,
    separation: vec3<f32>, relative: vec4<f32>,
    hinge: u32,
    // The anchor parameters (body frames), which the adjoint needs.
    anchor_a: vec3<f32>, anchor_b: vec3<f32>,
}

fn joint_frame(j: u32, i: u32) -> JointFrame {
    let rec = joint_record(j);
    let a = model_u32(rec);
    let b = model_u32(rec + 1u);
    let xa = body_position(a, i);
    let xb = body_position(b, i);
    var f: JointFrame;
    f.qa = body_orientation(a, i);
    f.qb = body_orientation(b, i);
    let anchor_slot = hdr.p_joint + j * 6u;
    f.anchor_a = param_vec3(anchor_slot, i);
    f.anchor_b = param_vec3(anchor_slot + 3u, i);
    f.arm_a = quat_rotate(f.qa, f.anchor_a);
    f.arm_b = quat_rotate(f.qb, f.anchor_b);
    f.frame_a = quat_mul(f.qa, model_quat(rec + 4u));
    f.frame_b = quat_mul(f.qb, model_quat(rec + 8u));
    f.separation = (xb + f.arm_b) - (xa + f.arm_a);
    f.relative = quat_mul(quat_conj(f.frame_a), f.frame_b);
    f.hinge = model_u32(rec + 2u);
    return f;
}

fn joint_frame_axis(f: JointFrame, k: u32) -> JointAxis {
    let unit = vec3<f32>(select(0.0, 1.0, k % 3u == 0u), select(0.0, 1.0, k % 3u == 1u), select(0.0, 1.0, k % 3u == 2u));
    let axis = quat_rotate(f.frame_a, unit);
    let linear = k < 3u;
    let hinge = f.hinge == 1u;
    var out: JointAxis;
    out.jac.lin_a = select(vec3<f32>(0.0), -axis, linear);
    out.jac.ang_a = select(-axis, -cross(f.arm_a, axis), linear);
    out.jac.lin_b = select(vec3<f32>(0.0), axis, linear);
    out.jac.ang_b = select(axis, cross(f.arm_b, axis), linear);
    out.coordinate = select(angular_coordinate(f.frame_a, f.frame_b, f.relative, unit, axis, k, hinge),
                            dot(f.separation, axis), linear);
    return out;
}

// A joint's frame with its bodies' mass data, for the rows on its axes (whose bodies are the
// joint's, layout::pack).
struct JointRowBodies { frame: JointFrame, mass_a: BodyMass, mass_b: BodyMass, }

fn joint_row_bodies(j: u32, i: u32) -> JointRowBodies {
    let rec = joint_record(j);
    let a = model_u32(rec);
    let b = model_u32(rec + 1u);
    let f = joint_frame(j, i);
    return JointRowBodies(f, BodyMass(f.qa, body_inverse_mass(a, i), body_inverse_inertia(a, i)),
                          BodyMass(f.qb, body_inverse_mass(b, i), body_inverse_inertia(b, i)));
}

// Rotation coordinate of axis k (3..6). Generic joints use the relative rotation vector. A
// hinge may turn any amount about its axis, where the rotation vector would mix its locked
// axes and jump at half a turn, so it uses the twist angle about the axis and, for the locked
// axes, the misalignment (x_a cross x_b) . axis_k of the two frames' hinge axes.
fn angular_coordinate(frame_a: vec4<f32>, frame_b: vec4<f32>, relative: vec4<f32>, unit: vec3<f32>,
                      axis: vec3<f32>, k: u32, hinge: bool) -> f32 {
    let generic = dot(quat_log(relative), unit);
    let sign = select(1.0, -1.0, relative.w < 0.0);
    let twist = 2.0 * atan2(sign * relative.x, sign * relative.w);
    let x = vec3<f32>(1.0, 0.0, 0.0);
    let swing = dot(cross(quat_rotate(frame_a, x), quat_rotate(frame_b, x)), axis);
    return select(generic, select(swing, twist, k == 3u), hinge);
}

// A lock's softness [mass scale, CFM scale, ERP]: its record's own (settings.lock_frequency,
// packed as ERP and CFM scale) where set, else the header's joint softness. Selected, not
// recomputed, in the second case so that models without a lock frequency keep their bits.
fn lock_softness(rec: u32) -> vec3<f32> {
    let own = model_u32(rec + 2u) != 0u;
    let cfm = model_f32(rec + 3u);
    return select(vec3<f32>(hdr.joint_mass_scale, hdr.joint_cfm_scale, hdr.joint_erp),
                  vec3<f32>(1.0 / (1.0 + cfm), cfm, model_f32(rec + 2u)), own);
}

fn joint_lock_rows_forward(i: u32) {
    let dt = hdr.dt;
    // The joint whose frame `joint` holds (model data: the branch is uniform).
    var loaded = 0xffffffffu;
    var joint: JointRowBodies;
    for (var l = 0u; l < hdr.n_lock; l++) {
        let rec = hdr.off_lock + l * 4u;
        let j = model_u32(rec);
        if (j != loaded) {
            joint = joint_row_bodies(j, i);
            loaded = j;
        }
        let ax = joint_frame_axis(joint.frame, model_u32(rec + 1u));
        let soft = lock_softness(rec);
        row_write_bodies(l, i, ax.jac, joint.mass_a, joint.mass_b, soft.z * ax.coordinate / dt,
                         -UNBOUNDED, UNBOUNDED, 0.0, soft.x, soft.y);
    }
}

// MuJoCo's impedance d(x) of a violation of depth x (clamped to >= 0) and its derivative
// d'(x), from the impedance record at rec ([k, b, d0, dmax, width, midpoint, power],
// layout::impedance_record). The power's bases are kept off 0, where pow is undefined.
fn impedance(rec: u32, depth: f32) -> vec2<f32> {
    let d0 = model_f32(rec + 2u);
    let dmax = model_f32(rec + 3u);
    let width = model_f32(rec + 4u);
    let mid = model_f32(rec + 5u);
    let power = model_f32(rec + 6u);
    let x = max(depth, 0.0);
    let inside = x < width;
    let w = max(width, 1.0e-30);
    let u = min(x / w, 1.0);
    let lower = u <= mid;
    let p1 = power - 1.0;
    let below = max(u, 1.0e-30);
    let above = max(1.0 - u, 1.0e-30);
    let y_low = pow(below, power) / pow(mid, p1);
    let y_high = 1.0 - pow(above, power) / pow(1.0 - mid, p1);
    let dy_low = power * pow(below, p1) / pow(mid, p1);
    let dy_high = power * pow(above, p1) / pow(1.0 - mid, p1);
    let y = select(select(y_high, y_low, lower), 1.0, !inside);
    let dy = select(select(dy_high, dy_low, lower), 0.0, !inside);
    return vec2<f32>(d0 + y * (dmax - d0), dy * (dmax - d0) / w);
}

// A limit row in MuJoCo's impedance model: (mass scale, CFM scale, bias) for gap `gap` (< 0
// violated) and start-of-step speed `speed`. Converged alone the row ends the step at
// J v' = (1 - s)(u + h a0) - s bias with s = K / (K + cfm); MuJoCo's
// J v' = u + h ((1 - d) a0 + d (-b u - k d r)) is that with s = d (CFM scale (1 - d) / d) and
// bias = h d k r - (1 - h b) u. Mirrors the twin's `impedance_row`.
fn impedance_row(rec: u32, gap: f32, speed: f32, dt: f32) -> vec3<f32> {
    let d = impedance(rec, -gap).x;
    return vec3<f32>(d, (1.0 - d) / d, dt * d * model_f32(rec) * gap - (1.0 - dt * model_f32(rec + 1u)) * speed);
}

// One-sided row on the nearer bound, written so that lambda >= 0 pushes back inside. With the
// soft row (the default) it corrects with the ERP outside the limit and is a speculative
// constraint inside that only stops the coordinate from crossing the bound within this step
// (soft on both sides so that the dynamics stay continuous at the bound). With MuJoCo's
// impedance model (hdr.impedance_rows) it acts only while violated, as MuJoCo's does: inside,
// a bias of UNBOUNDED keeps its impulse at 0. Written at the step's start, before gravity and
// the forces: the impedance model needs the speed before them.
fn joint_limit_rows_forward(i: u32) {
    let dt = hdr.dt;
    let mujoco = (hdr.impedance_rows & IMPEDANCE_LIMITS) != 0u;
    for (var l = 0u; l < hdr.n_limit; l++) {
        let rec = hdr.off_limit + l * 4u;
        let joint = joint_row_bodies(model_u32(rec), i);
        let ax = joint_frame_axis(joint.frame, model_u32(rec + 1u));
        let lower = model_f32(rec + 2u);
        let upper = model_f32(rec + 3u);
        let c = ax.coordinate;
        let at_lower = c - lower < upper - c;
        let sign = select(-1.0, 1.0, at_lower);
        let gap = select(upper - c, c - lower, at_lower);
        let violated = gap < 0.0;
        var jac = ax.jac;
        jac.lin_a *= sign; jac.ang_a *= sign; jac.lin_b *= sign; jac.ang_b *= sign;
        let r = hdr.row_limit + l;
        // (mass scale, CFM scale, bias); the branch is uniform (model data).
        var soft = vec3<f32>(hdr.limit_mass_scale, hdr.limit_cfm_scale,
                             select(gap / dt, hdr.limit_erp * gap / dt, violated));
        if (mujoco) {
            let bodies = row_bodies(r);
            let imp = impedance_row(hdr.off_impedance, gap, jacobian_speed(jac, bodies.x, bodies.y, i), dt);
            soft = vec3<f32>(imp.x, imp.y, select(UNBOUNDED, imp.z, violated));
        }
        row_write_bodies(r, i, jac, joint.mass_a, joint.mass_b, soft.z, 0.0, UNBOUNDED, 0.0, soft.x, soft.y);
    }
}

// ---- Adjoints.

// What joint_axis_adjoint adds into a joint's bodies' positions and orientations and into its
// anchor parameters.
struct JointAxisAdjoint {
    pos_a: vec3<f32>, pos_b: vec3<f32>,
    q_a: vec4<f32>, q_b: vec4<f32>,
    anchor_a: vec3<f32>, anchor_b: vec3<f32>,
}

// Adjoint of joint_axis: accumulates into both bodies' positions and orientations and into
// the joint's anchor parameters.
fn joint_axis_adjoint(j: u32, k: u32, i: u32, d_jac: RowJacobian, d_coordinate: f32) {
    let d = joint_frame_axis_adjoint(joint_frame(j, i), j, k, d_jac, d_coordinate);
    let rec = joint_record(j);
    let sa = body_slot(model_u32(rec));
    let sb = body_slot(model_u32(rec + 1u));
    let anchor_slot = hdr.p_joint + j * 6u;
    state_adj_add_vec3(sa, i, d.pos_a);
    state_adj_add_vec3(sb, i, d.pos_b);
    state_adj_add_quat(sa + 3u, i, d.q_a);
    state_adj_add_quat(sb + 3u, i, d.q_b);
    param_adj_add_vec3(anchor_slot, i, d.anchor_a);
    param_adj_add_vec3(anchor_slot + 3u, i, d.anchor_b);
}

// Adjoint of joint_frame_axis for axis k of joint j, whose frame is f: the parts of the
// bodies' positions, orientations and the anchors.
fn joint_frame_axis_adjoint(f: JointFrame, j: u32, k: u32, d_jac: RowJacobian, d_coordinate: f32) -> JointAxisAdjoint {
    let rec = joint_record(j);
    let qa = f.qa;
    let qb = f.qb;
    let anchor_a = f.anchor_a;
    let anchor_b = f.anchor_b;
    let arm_a = f.arm_a;
    let arm_b = f.arm_b;
    let frame_local_a = model_quat(rec + 4u);
    let frame_local_b = model_quat(rec + 8u);
    let frame_a = f.frame_a;
    let frame_b = f.frame_b;
    let unit = vec3<f32>(select(0.0, 1.0, k % 3u == 0u), select(0.0, 1.0, k % 3u == 1u), select(0.0, 1.0, k % 3u == 2u));
    let axis = quat_rotate(frame_a, unit);
    let lin = select(0.0, 1.0, k < 3u);
    let ang = 1.0 - lin;
    let separation = f.separation;
    let relative = f.relative;
    let hinge = f.hinge == 1u;
    let x = vec3<f32>(1.0, 0.0, 0.0);
    let hinge_a = quat_rotate(frame_a, x);
    let hinge_b = quat_rotate(frame_b, x);
    // Which angular coordinate the forward used (see angular_coordinate).
    let d_angular = d_coordinate * ang;
    let use_log = select(1.0, 0.0, hinge);
    let use_twist = select(0.0, 1.0, hinge && k == 3u);
    let use_swing = select(0.0, 1.0, hinge && k != 3u);
    let r2 = relative.x * relative.x + relative.w * relative.w;
    let d_twist_vx = d_angular * use_twist * 2.0 * relative.w / r2;
    let d_twist_w = -d_angular * use_twist * 2.0 * relative.x / r2;
    let d_swing = d_angular * use_swing;

    let d_axis = (d_jac.lin_b - d_jac.lin_a - cross(d_jac.ang_a, arm_a) + cross(d_jac.ang_b, arm_b)
                  + separation * d_coordinate) * lin
               + (d_jac.ang_b - d_jac.ang_a) * ang
               + cross(hinge_a, hinge_b) * d_swing;
    let d_separation = axis * (d_coordinate * lin);
    let d_arm_a = -cross(axis, d_jac.ang_a) * lin - d_separation;
    let d_arm_b = cross(axis, d_jac.ang_b) * lin + d_separation;
    let d_relative = quat_log_adjoint(relative, unit * (d_angular * use_log))
                   + vec4<f32>(d_twist_vx, 0.0, 0.0, d_twist_w);
    let d_rel = quat_mul_adjoint(quat_conj(frame_a), frame_b, d_relative);
    let d_frame_a = quat_conj(d_rel.a) + quat_rotate_adjoint(frame_a, unit, d_axis).q
                  + quat_rotate_adjoint(frame_a, x, cross(hinge_b, axis) * d_swing).q;
    let d_frame_b = d_rel.b + quat_rotate_adjoint(frame_b, x, cross(axis, hinge_a) * d_swing).q;
    let d_qa_frame = quat_mul_adjoint(qa, frame_local_a, d_frame_a).a;
    let d_qb_frame = quat_mul_adjoint(qb, frame_local_b, d_frame_b).a;
    let d_arm_a_q = quat_rotate_adjoint(qa, anchor_a, d_arm_a);
    let d_arm_b_q = quat_rotate_adjoint(qb, anchor_b, d_arm_b);
    return JointAxisAdjoint(-d_separation, d_separation, d_qa_frame + d_arm_a_q.q, d_qb_frame + d_arm_b_q.q,
                            d_arm_a_q.v, d_arm_b_q.v);
}

// The adjoints of a joint's bodies' parameters, positions and orientations and of its anchors,
// accumulated over its consecutive rows (see BodyMassAdjoint): one load and one store per
// joint instead of a read-modify-write per row. Each slot gets the additions of
// row_write_adjoint and joint_axis_adjoint in their order, so the bits do not change.
struct JointRowsAdjoint {
    mass_a: BodyMassAdjoint, mass_b: BodyMassAdjoint,
    pos_a: vec3<f32>, pos_b: vec3<f32>,
    anchor_a: vec3<f32>, anchor_b: vec3<f32>,
}

fn joint_rows_adjoint_load(j: u32, i: u32) -> JointRowsAdjoint {
    let rec = joint_record(j);
    let a = model_u32(rec);
    let b = model_u32(rec + 1u);
    var out: JointRowsAdjoint;
    out.mass_a = body_mass_adjoint_load(a, i);
    out.mass_b = body_mass_adjoint_load(b, i);
    out.pos_a = state_adj_vec3(body_slot(a), i);
    out.pos_b = state_adj_vec3(body_slot(b), i);
    if (hdr.param_gradients != 0u) {
        let anchor = hdr.adj_params + hdr.p_joint + j * 6u;
        out.anchor_a = adj_vec3(anchor, i);
        out.anchor_b = adj_vec3(anchor + 3u, i);
    }
    return out;
}

fn adj_set_vec3(slot: u32, i: u32, v: vec3<f32>) {
    adj_set(slot, i, v.x);
    adj_set(slot + 1u, i, v.y);
    adj_set(slot + 2u, i, v.z);
}

fn joint_rows_adjoint_store(j: u32, i: u32, g: JointRowsAdjoint) {
    let rec = joint_record(j);
    let a = model_u32(rec);
    let b = model_u32(rec + 1u);
    body_mass_adjoint_store(a, i, g.mass_a);
    body_mass_adjoint_store(b, i, g.mass_b);
    adj_set_vec3(hdr.adj_state + body_slot(a), i, g.pos_a);
    adj_set_vec3(hdr.adj_state + body_slot(b), i, g.pos_b);
    if (hdr.param_gradients != 0u) {
        let anchor = hdr.adj_params + hdr.p_joint + j * 6u;
        adj_set_vec3(anchor, i, g.anchor_a);
        adj_set_vec3(anchor + 3u, i, g.anchor_b);
    }
}

// Adds a row's row_write_adjoint parts (w) and then its joint_axis_adjoint parts (d).
fn joint_rows_adjoint_add(acc: JointRowsAdjoint, w: RowWriteAdjoint, d: JointAxisAdjoint) -> JointRowsAdjoint {
    var out = acc;
    out.mass_a = body_mass_adjoint_add(acc.mass_a, w.a);
    out.mass_b = body_mass_adjoint_add(acc.mass_b, w.b);
    out.pos_a = acc.pos_a + d.pos_a;
    out.pos_b = acc.pos_b + d.pos_b;
    out.mass_a.q = out.mass_a.q + d.q_a;
    out.mass_b.q = out.mass_b.q + d.q_b;
    out.anchor_a = acc.anchor_a + d.anchor_a;
    out.anchor_b = acc.anchor_b + d.anchor_b;
    return out;
}

// A joint's rows in reverse order share its frame, mass data and adjoint sums while they are
// consecutive (every joint's lock rows are); `NO_JOINT` before the first.
const NO_JOINT: u32 = 0xffffffffu;

fn joint_lock_rows_adjoint(i: u32) {
    var loaded = NO_JOINT;
    var joint: JointRowBodies;
    var acc: JointRowsAdjoint;
    for (var l_rev = 0u; l_rev < hdr.n_lock; l_rev++) {
        let l = hdr.n_lock - 1u - l_rev;
        let rec = hdr.off_lock + l * 4u;
        let j = model_u32(rec);
        let k = model_u32(rec + 1u);
        if (j != loaded) {
            if (loaded != NO_JOINT) {
                joint_rows_adjoint_store(loaded, i, acc);
            }
            joint = joint_row_bodies(j, i);
            acc = joint_rows_adjoint_load(j, i);
            loaded = j;
        }
        let ax = joint_frame_axis(joint.frame, k);
        let soft = lock_softness(rec);
        let w = row_write_adjoint_bodies(l, i, ax.jac, joint.mass_a, joint.mass_b,
                                         soft.x, soft.y);
        let d = joint_frame_axis_adjoint(joint.frame, j, k, w.row.jac, w.row.bias * soft.z / hdr.dt);
        acc = joint_rows_adjoint_add(acc, w, d);
    }
    if (loaded != NO_JOINT) {
        joint_rows_adjoint_store(loaded, i, acc);
    }
}

// Runs with the state at the step's start (the impedance model's speed reads it).
fn joint_limit_rows_adjoint(i: u32) {
    let dt = hdr.dt;
    let mujoco = (hdr.impedance_rows & IMPEDANCE_LIMITS) != 0u;
    var loaded = NO_JOINT;
    var joint: JointRowBodies;
    var acc: JointRowsAdjoint;
    for (var l_rev = 0u; l_rev < hdr.n_limit; l_rev++) {
        let l = hdr.n_limit - 1u - l_rev;
        let rec = hdr.off_limit + l * 4u;
        let j = model_u32(rec);
        let k = model_u32(rec + 1u);
        if (j != loaded) {
            if (loaded != NO_JOINT) {
                joint_rows_adjoint_store(loaded, i, acc);
            }
            joint = joint_row_bodies(j, i);
            acc = joint_rows_adjoint_load(j, i);
            loaded = j;
        }
        let ax = joint_frame_axis(joint.frame, k);
        let lower = model_f32(rec + 2u);
        let upper = model_f32(rec + 3u);
        let c = ax.coordinate;
        let at_lower = c - lower < upper - c;
        let sign = select(-1.0, 1.0, at_lower);
        let gap = select(upper - c, c - lower, at_lower);
        let violated = gap < 0.0;
        let r = hdr.row_limit + l;
        let jac = row_jacobian_scaled(ax.jac, sign);
        let bodies = row_bodies(r);
        let rec_imp = hdr.off_impedance;
        var scales = vec2<f32>(hdr.limit_mass_scale, hdr.limit_cfm_scale);
        var speed = 0.0;
        if (mujoco) {
            speed = jacobian_speed(jac, bodies.x, bodies.y, i);
            scales = impedance_row(rec_imp, gap, speed, dt).xy;
        }
        let w = row_write_adjoint_bodies(r, i, jac, joint.mass_a, joint.mass_b, scales.x, scales.y);
        var d_gap = w.row.bias * select(1.0 / dt, hdr.limit_erp / dt, violated);
        var d_jac = w.row.jac;
        if (mujoco) {
            // m_c = ms / (ms (K - K_soft) + K_soft) and cfm = cs K_soft (row_write), from the
            // fields the forward stored; ms = d, cs = (1 - d) / d.
            let k_raw = row_inverse_effective_mass(r, i, jac);
            let k_lin = dot(jac.lin_a, row_vec3(r, 12u, i)) + dot(jac.lin_b, row_vec3(r, 18u, i));
            let k_soft = select(k_raw, k_lin, k_lin > 0.0);
            let den = scales.x * (k_raw - k_soft) + k_soft;
            let d_ms = row_adj_get(r, 24u, i) * k_soft / (den * den);
            let d_cs = row_adj_get(r, 25u, i) * k_soft;
            // Inside the limit the bias is the constant UNBOUNDED and d is d(0).
            let d_bias = select(0.0, w.row.bias, violated);
            let imp = impedance(rec_imp, -gap);
            let d_prime = select(0.0, imp.y, violated);
            let stiffness = model_f32(rec_imp);
            let d_d = d_ms - d_cs / (imp.x * imp.x) + d_bias * dt * stiffness * gap;
            d_gap = d_bias * dt * imp.x * stiffness - d_d * d_prime;
            let d_speed = -d_bias * (1.0 - dt * model_f32(rec_imp + 1u));
            d_jac.lin_a += body_velocity(bodies.x, i) * d_speed;
            d_jac.ang_a += body_angular_velocity(bodies.x, i) * d_speed;
            d_jac.lin_b += body_velocity(bodies.y, i) * d_speed;
            d_jac.ang_b += body_angular_velocity(bodies.y, i) * d_speed;
            state_adj_add_vec3(body_slot(bodies.x) + 7u, i, jac.lin_a * d_speed);
            state_adj_add_vec3(body_slot(bodies.x) + 10u, i, jac.ang_a * d_speed);
            state_adj_add_vec3(body_slot(bodies.y) + 7u, i, jac.lin_b * d_speed);
            state_adj_add_vec3(body_slot(bodies.y) + 10u, i, jac.ang_b * d_speed);
        }
        let d = joint_frame_axis_adjoint(joint.frame, j, k, row_jacobian_scaled(d_jac, sign), d_gap * sign);
        acc = joint_rows_adjoint_add(acc, w, d);
    }
    if (loaded != NO_JOINT) {
        joint_rows_adjoint_store(loaded, i, acc);
    }
}

// ---- Passive rows: a joint's damping and spring, dry friction and armature on its free axes
// (layout::PassiveRow). Each is a compliant row, m_c = 1 / (K + cfm) with an absolute cfm, so
// that the solver's fixed point is the implicit impulse lambda = -(J v' + bias) / cfm at the
// end-of-step velocity v'. The stage runs before gravity and the force actuators, so that an
// armature row's bias holds the joint speed at the step's start.

// Relative speed J v of a Jacobian at the bodies' current velocities.
fn jacobian_speed(jac: RowJacobian, a: u32, b: u32, i: u32) -> f32 {
    return dot(jac.lin_a, body_velocity(a, i)) + dot(jac.ang_a, body_angular_velocity(a, i))
         + dot(jac.lin_b, body_velocity(b, i)) + dot(jac.ang_b, body_angular_velocity(b, i));
}

// K = J M^-1 J^T of row r from the fields row_write stored, in row_write's order of operations.
fn row_inverse_effective_mass(r: u32, i: u32, jac: RowJacobian) -> f32 {
    return max(dot(jac.lin_a, row_vec3(r, 12u, i)) + dot(jac.ang_a, row_vec3(r, 15u, i))
             + dot(jac.lin_b, row_vec3(r, 18u, i)) + dot(jac.ang_b, row_vec3(r, 21u, i)), 1.0e-12);
}

// A rigid row_write whose m_c and cfm are then replaced by the compliant ones.
fn row_write_compliant(r: u32, i: u32, jac: RowJacobian, bias: f32, lo: f32, hi: f32, cfm: f32) {
    row_write(r, i, jac, bias, lo, hi, 0.0, 1.0, 0.0);
    let k = row_inverse_effective_mass(r, i, jac);
    row_set(r, 24u, i, 1.0 / (k + cfm));
    row_set(r, 25u, i, cfm);
}

// Adjoint of row_write_compliant. row_write_adjoint with mass scale 1 differentiates m_c = 1 / K;
// the adjoint of m_c is rescaled by K^2 / (K + cfm)^2 first, so that it applies
// d(1 / (K + cfm)) / dK instead. cfm is a model constant.
fn row_write_compliant_adjoint(r: u32, i: u32, jac: RowJacobian, cfm: f32) -> RowAdjoint {
    let k = row_inverse_effective_mass(r, i, jac);
    let d_m = row_adj_get(r, 24u, i);
    let total = k + cfm;
    row_adj_add(r, 24u, i, d_m * (k * k) / (total * total) - d_m);
    return row_write_adjoint(r, i, jac, 1.0, 0.0);
}

fn joint_passive_rows_forward(i: u32) {
    for (var p = 0u; p < hdr.n_passive; p++) {
        let rec = hdr.off_passive + p * 8u;
        let ax = joint_axis(model_u32(rec), model_u32(rec + 1u), i);
        let r = hdr.row_passive + p;
        let bodies = row_bodies(r);
        let start_speed = jacobian_speed(ax.jac, bodies.x, bodies.y, i);
        let bias = model_f32(rec + 5u) * (ax.coordinate - model_f32(rec + 6u))
                 - model_f32(rec + 2u) * start_speed;
        let bound = model_f32(rec + 7u);
        row_write_compliant(r, i, ax.jac, bias, -bound, bound, model_f32(rec + 4u));
    }
}

// Runs with the state at the step's start (the armature rows' start speed reads it).
fn joint_passive_rows_adjoint(i: u32) {
    for (var p_rev = 0u; p_rev < hdr.n_passive; p_rev++) {
        let p = hdr.n_passive - 1u - p_rev;
        let rec = hdr.off_passive + p * 8u;
        let j = model_u32(rec);
        let k = model_u32(rec + 1u);
        let ax = joint_axis(j, k, i);
        let r = hdr.row_passive + p;
        let bodies = row_bodies(r);
        let d = row_write_compliant_adjoint(r, i, ax.jac, model_f32(rec + 4u));
        // bias = gain (coordinate - target) - weight J v_start
        let d_speed = -d.bias * model_f32(rec + 2u);
        let va = body_velocity(bodies.x, i);
        let wa = body_angular_velocity(bodies.x, i);
        let vb = body_velocity(bodies.y, i);
        let wb = body_angular_velocity(bodies.y, i);
        var d_jac = d.jac;
        d_jac.lin_a += va * d_speed;
        d_jac.ang_a += wa * d_speed;
        d_jac.lin_b += vb * d_speed;
        d_jac.ang_b += wb * d_speed;
        state_adj_add_vec3(body_slot(bodies.x) + 7u, i, ax.jac.lin_a * d_speed);
        state_adj_add_vec3(body_slot(bodies.x) + 10u, i, ax.jac.ang_a * d_speed);
        state_adj_add_vec3(body_slot(bodies.y) + 7u, i, ax.jac.lin_b * d_speed);
        state_adj_add_vec3(body_slot(bodies.y) + 10u, i, ax.jac.ang_b * d_speed);
        joint_axis_adjoint(j, k, i, d_jac, d.bias * model_f32(rec + 5u));
    }
}
