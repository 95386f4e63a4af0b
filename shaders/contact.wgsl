// Contacts: points with a radius (sphere centres, capsule segment ends, box corners) against
// the ground plane z = 0 and against shapes fixed to the world, and sphere-sphere pairs between
// bodies. Each contact owns three consecutive rows: the normal (lambda >= 0) and two Coulomb
// friction rows clamped to +-mu * lambda_normal.
//
// The normal row is speculative while separated (it only forbids reaching the surface within
// this step) and corrects penetration with the ERP once penetrating. It is soft (CFM from the
// contact frequency) on both sides, so that the dynamics stay continuous as a contact closes.
// Restitution sets the target separating speed to -e * (approach speed) when the contact
// closes within this step faster than the restitution threshold.

struct ContactFrame {
    normal: RowJacobian,
    tangent1: RowJacobian,
    tangent2: RowJacobian,
    gap: f32,
    approach_speed: f32,
}

fn contact_rows_write(first_row: u32, i: u32, frame: ContactFrame, friction: f32, restitution: f32) {
    let dt = hdr.dt;
    let gap = frame.gap;
    let violated = gap < 0.0;
    let position_bias = select(gap / dt, hdr.contact_erp * gap / dt, violated);
    let closes_now = gap + dt * frame.approach_speed < 0.0;
    let bounces = closes_now && (frame.approach_speed < -hdr.restitution_threshold);
    let bias = select(position_bias, min(position_bias, restitution * frame.approach_speed), bounces);
    // A bounce is rigid: a soft row would reach only part of the restitution speed this step
    // and re-aim at a smaller approach speed the next, losing the bounce.
    // The three rows share their bodies (layout::pack).
    let bodies = row_bodies(first_row);
    let mass_a = body_mass(bodies.x, i);
    let mass_b = body_mass(bodies.y, i);
    row_write_bodies(first_row, i, frame.normal, mass_a, mass_b, bias, 0.0, UNBOUNDED, 0.0,
                     select(hdr.contact_mass_scale, 1.0, bounces), select(hdr.contact_cfm_scale, 0.0, bounces));
    row_write_bodies(first_row + 1u, i, frame.tangent1, mass_a, mass_b, 0.0, 0.0, 0.0, friction, 1.0, 0.0);
    row_write_bodies(first_row + 2u, i, frame.tangent2, mass_a, mass_b, 0.0, 0.0, 0.0, friction, 1.0, 0.0);
}

// Jacobian of the relative velocity along `dir` at `point`, body a pushed by -dir, b by +dir.
fn point_jacobian(dir: vec3<f32>, arm_a: vec3<f32>, arm_b: vec3<f32>) -> RowJacobian {
    var jac: RowJacobian;
    jac.lin_a = -dir;
    jac.ang_a = -cross(arm_a, dir);
    jac.lin_b = dir;
    jac.ang_b = cross(arm_b, dir);
    return jac;
}

fn ground_contact_rows_forward(i: u32) {
    let normal = vec3<f32>(0.0, 0.0, 1.0);
    for (var c = 0u; c < hdr.n_contacts; c++) {
        let rec = hdr.off_contact + c * 8u;
        let b = model_u32(rec);
        let radius = model_f32(rec + 4u);
        let x = body_position(b, i);
        let centre = x + quat_rotate(body_orientation(b, i), model_vec3(rec + 1u));
        let point = centre - radius * normal;
        let arm = point - x;
        var frame: ContactFrame;
        // The ground is body 0: its arm is irrelevant (zero inverse mass, zero velocity).
        frame.normal = point_jacobian(normal, vec3<f32>(0.0), arm);
        frame.tangent1 = point_jacobian(vec3<f32>(1.0, 0.0, 0.0), vec3<f32>(0.0), arm);
        frame.tangent2 = point_jacobian(vec3<f32>(0.0, 1.0, 0.0), vec3<f32>(0.0), arm);
        frame.gap = centre.z - radius;
        frame.approach_speed = dot(body_velocity(b, i) + cross(body_angular_velocity(b, i), arm), normal);
        let p = hdr.p_contact + c * 2u;
        contact_rows_write(hdr.row_contact + 3u * c, i, frame, param(p, i), param(p + 1u, i));
    }
}

// An orthonormal basis around a unit normal without a branch (Duff et al. 2017).
fn tangent_basis(n: vec3<f32>) -> array<vec3<f32>, 2> {
    let s = select(-1.0, 1.0, n.z >= 0.0);
    let a = -1.0 / (s + n.z);
    let b = n.x * n.y * a;
    return array<vec3<f32>, 2>(
        vec3<f32>(1.0 + s * n.x * n.x * a, s * b, -s * n.x),
        vec3<f32>(b, s + n.y * n.y * a, -n.y),
    );
}

fn sphere_pair_rows_forward(i: u32) {
    for (var p = 0u; p < hdr.n_pairs; p++) {
        let rec = hdr.off_pair + p * 12u;
        let a = model_u32(rec);
        let b = model_u32(rec + 1u);
        let radius_a = model_f32(rec + 5u);
        let radius_b = model_f32(rec + 9u);
        let xa = body_position(a, i);
        let xb = body_position(b, i);
        let ca = xa + quat_rotate(body_orientation(a, i), model_vec3(rec + 2u));
        let cb = xb + quat_rotate(body_orientation(b, i), model_vec3(rec + 6u));
        let d = cb - ca;
        let dist = length(d);
        let n = d / max(dist, 1.0e-9);
        let point = 0.5 * ((ca + radius_a * n) + (cb - radius_b * n));
        let arm_a = point - xa;
        let arm_b = point - xb;
        let t = tangent_basis(n);
        var frame: ContactFrame;
        frame.normal = point_jacobian(n, arm_a, arm_b);
        frame.tangent1 = point_jacobian(t[0], arm_a, arm_b);
        frame.tangent2 = point_jacobian(t[1], arm_a, arm_b);
        frame.gap = dist - radius_a - radius_b;
        frame.approach_speed = dot(body_velocity(b, i) + cross(body_angular_velocity(b, i), arm_b)
                                 - body_velocity(a, i) - cross(body_angular_velocity(a, i), arm_a), n);
        let q = hdr.p_pair + p * 2u;
        contact_rows_write(hdr.row_pair + 3u * p, i, frame, param(q, i), param(q + 1u, i));
    }
}

// ---- Adjoints.

struct ContactAdjoint {
    frame: ContactFrame,
    friction: f32,
    restitution: f32,
}

fn contact_rows_write_adjoint(first_row: u32, i: u32, frame: ContactFrame, restitution: f32) -> ContactAdjoint {
    let dt = hdr.dt;
    let gap = frame.gap;
    let violated = gap < 0.0;
    let factor = select(1.0, hdr.contact_erp, violated);
    let position_bias = gap / dt * factor;
    let closes_now = gap + dt * frame.approach_speed < 0.0;
    let bounces = closes_now && (frame.approach_speed < -hdr.restitution_threshold);
    // The three rows share their bodies: their mass data is loaded once and their adjoints are
    // summed in registers, in row order, and stored once (row_write_adjoint_bodies).
    let bodies = row_bodies(first_row);
    let mass_a = body_mass(bodies.x, i);
    let mass_b = body_mass(bodies.y, i);
    let same = bodies.x == bodies.y;
    var acc = RowBodiesAdjoint(body_mass_adjoint_load(bodies.x, i), body_mass_adjoint_load(bodies.y, i));
    let wn = row_write_adjoint_bodies(first_row, i, frame.normal, mass_a, mass_b,
                                      select(hdr.contact_mass_scale, 1.0, bounces),
                                      select(hdr.contact_cfm_scale, 0.0, bounces));
    acc = row_bodies_adjoint_add(acc, same, wn);
    let w1 = row_write_adjoint_bodies(first_row + 1u, i, frame.tangent1, mass_a, mass_b, 1.0, 0.0);
    acc = row_bodies_adjoint_add(acc, same, w1);
    let w2 = row_write_adjoint_bodies(first_row + 2u, i, frame.tangent2, mass_a, mass_b, 1.0, 0.0);
    acc = row_bodies_adjoint_add(acc, same, w2);
    body_mass_adjoint_store(bodies.x, i, acc.a);
    if (!same) {
        body_mass_adjoint_store(bodies.y, i, acc.b);
    }
    let dn = wn.row;
    let d1 = w1.row;
    let d2 = w2.row;
    let rest_bias = restitution * frame.approach_speed;
    let takes_rest = bounces && !(position_bias < rest_bias);
    let d_rest = select(0.0, dn.bias, takes_rest);
    var out: ContactAdjoint;
    out.frame.normal = dn.jac;
    out.frame.tangent1 = d1.jac;
    out.frame.tangent2 = d2.jac;
    out.frame.gap = select(dn.bias, 0.0, takes_rest) * factor / dt;
    out.frame.approach_speed = d_rest * restitution;
    out.friction = d1.mu + d2.mu;
    out.restitution = d_rest * frame.approach_speed;
    return out;
}

struct PointJacobianAdjoint { dir: vec3<f32>, arm_a: vec3<f32>, arm_b: vec3<f32>, }

fn point_jacobian_adjoint(dir: vec3<f32>, arm_a: vec3<f32>, arm_b: vec3<f32>, g: RowJacobian) -> PointJacobianAdjoint {
    var out: PointJacobianAdjoint;
    out.dir = g.lin_b - g.lin_a - cross(g.ang_a, arm_a) + cross(g.ang_b, arm_b);
    out.arm_a = -cross(dir, g.ang_a);
    out.arm_b = cross(dir, g.ang_b);
    return out;
}

fn ground_contact_rows_adjoint(i: u32) {
    let normal = vec3<f32>(0.0, 0.0, 1.0);
    let tangent1 = vec3<f32>(1.0, 0.0, 0.0);
    let tangent2 = vec3<f32>(0.0, 1.0, 0.0);
    for (var c_rev = 0u; c_rev < hdr.n_contacts; c_rev++) {
        let c = hdr.n_contacts - 1u - c_rev;
        let rec = hdr.off_contact + c * 8u;
        let b = model_u32(rec);
        let radius = model_f32(rec + 4u);
        let offset = model_vec3(rec + 1u);
        let x = body_position(b, i);
        let q = body_orientation(b, i);
        let w = body_angular_velocity(b, i);
        let centre = x + quat_rotate(q, offset);
        let point = centre - radius * normal;
        let arm = point - x;
        var frame: ContactFrame;
        frame.normal = point_jacobian(normal, vec3<f32>(0.0), arm);
        frame.tangent1 = point_jacobian(tangent1, vec3<f32>(0.0), arm);
        frame.tangent2 = point_jacobian(tangent2, vec3<f32>(0.0), arm);
        frame.gap = centre.z - radius;
        frame.approach_speed = dot(body_velocity(b, i) + cross(w, arm), normal);
        let p = hdr.p_contact + c * 2u;
        let d = contact_rows_write_adjoint(hdr.row_contact + 3u * c, i, frame, param(p + 1u, i));
        param_adj_add(p, i, d.friction);
        param_adj_add(p + 1u, i, d.restitution);
        let d_rel = normal * d.frame.approach_speed;
        let d_arm = point_jacobian_adjoint(normal, vec3<f32>(0.0), arm, d.frame.normal).arm_b
                  + point_jacobian_adjoint(tangent1, vec3<f32>(0.0), arm, d.frame.tangent1).arm_b
                  + point_jacobian_adjoint(tangent2, vec3<f32>(0.0), arm, d.frame.tangent2).arm_b
                  + cross(d_rel, w);
        let slot = body_slot(b);
        state_adj_add_vec3(slot + 7u, i, d_rel);
        state_adj_add_vec3(slot + 10u, i, cross(arm, d_rel));
        let d_centre = d_arm + vec3<f32>(0.0, 0.0, d.frame.gap);
        state_adj_add_vec3(slot, i, d_centre - d_arm);
        state_adj_add_quat(slot + 3u, i, quat_rotate_adjoint(q, offset, d_centre).q);
    }
}

fn tangent_basis_adjoint(n: vec3<f32>, g0: vec3<f32>, g1: vec3<f32>) -> vec3<f32> {
    let s = select(-1.0, 1.0, n.z >= 0.0);
    let a = -1.0 / (s + n.z);
    let a2 = a * a;
    let d_b = s * g0.y + g1.x;
    return vec3<f32>(
        g0.x * 2.0 * s * n.x * a - s * g0.z + d_b * n.y * a,
        g1.y * 2.0 * n.y * a - g1.z + d_b * n.x * a,
        g0.x * s * n.x * n.x * a2 + g1.y * n.y * n.y * a2 + d_b * n.x * n.y * a2,
    );
}

fn sphere_pair_rows_adjoint(i: u32) {
    for (var p_rev = 0u; p_rev < hdr.n_pairs; p_rev++) {
        let p = hdr.n_pairs - 1u - p_rev;
        let rec = hdr.off_pair + p * 12u;
        let a = model_u32(rec);
        let b = model_u32(rec + 1u);
        let offset_a = model_vec3(rec + 2u);
        let offset_b = model_vec3(rec + 6u);
        let radius_a = model_f32(rec + 5u);
        let radius_b = model_f32(rec + 9u);
        let xa = body_position(a, i);
        let xb = body_position(b, i);
        let qa = body_orientation(a, i);
        let qb = body_orientation(b, i);
        let wa = body_angular_velocity(a, i);
        let wb = body_angular_velocity(b, i);
        let ca = xa + quat_rotate(qa, offset_a);
        let cb = xb + quat_rotate(qb, offset_b);
        let d = cb - ca;
        let dist = length(d);
        let n = d / max(dist, 1.0e-9);
        let point = 0.5 * ((ca + radius_a * n) + (cb - radius_b * n));
        let arm_a = point - xa;
        let arm_b = point - xb;
        let t = tangent_basis(n);
        let relative = body_velocity(b, i) + cross(wb, arm_b) - body_velocity(a, i) - cross(wa, arm_a);
        var frame: ContactFrame;
        frame.normal = point_jacobian(n, arm_a, arm_b);
        frame.tangent1 = point_jacobian(t[0], arm_a, arm_b);
        frame.tangent2 = point_jacobian(t[1], arm_a, arm_b);
        frame.gap = dist - radius_a - radius_b;
        frame.approach_speed = dot(relative, n);
        let q = hdr.p_pair + p * 2u;
        let dc = contact_rows_write_adjoint(hdr.row_pair + 3u * p, i, frame, param(q + 1u, i));
        param_adj_add(q, i, dc.friction);
        param_adj_add(q + 1u, i, dc.restitution);
        let j0 = point_jacobian_adjoint(n, arm_a, arm_b, dc.frame.normal);
        let j1 = point_jacobian_adjoint(t[0], arm_a, arm_b, dc.frame.tangent1);
        let j2 = point_jacobian_adjoint(t[1], arm_a, arm_b, dc.frame.tangent2);
        let d_rel = n * dc.frame.approach_speed;
        var d_n = j0.dir + tangent_basis_adjoint(n, j1.dir, j2.dir) + relative * dc.frame.approach_speed;
        let d_arm_a = j0.arm_a + j1.arm_a + j2.arm_a - cross(d_rel, wa);
        let d_arm_b = j0.arm_b + j1.arm_b + j2.arm_b + cross(d_rel, wb);
        let sa = body_slot(a);
        let sb = body_slot(b);
        state_adj_add_vec3(sb + 7u, i, d_rel);
        state_adj_add_vec3(sb + 10u, i, cross(arm_b, d_rel));
        state_adj_add_vec3(sa + 7u, i, -d_rel);
        state_adj_add_vec3(sa + 10u, i, -cross(arm_a, d_rel));
        let d_point = d_arm_a + d_arm_b;
        d_n += d_point * (0.5 * (radius_a - radius_b));
        let d_d = select(d_n / 1.0e-9, (d_n - n * dot(n, d_n)) / dist + n * dc.frame.gap, dist > 1.0e-9);
        let d_ca = 0.5 * d_point - d_d;
        let d_cb = 0.5 * d_point + d_d;
        state_adj_add_vec3(sa, i, d_ca - d_arm_a);
        state_adj_add_vec3(sb, i, d_cb - d_arm_b);
        state_adj_add_quat(sa + 3u, i, quat_rotate_adjoint(qa, offset_a, d_ca).q);
        state_adj_add_quat(sb + 3u, i, quat_rotate_adjoint(qb, offset_b, d_cb).q);
    }
}

// ---- Contacts with world shapes: a body's contact point against a shape fixed to the world.
//
// The signed distance is taken in the shape's frame. Spheres, capsules and boxes are a box
// core (a point, a segment along z, a box) grown by a rounding radius; a cylinder is a box in
// (radial distance, 0, axial) coordinates whose middle extent is unbounded, which makes its
// distance exact (radial and axial distances combined); a plane's distance is its local z.
// Every kind runs the same arithmetic and `select`s its result, so instances never diverge.

struct WorldShapeGeometry { is_plane: bool, is_cylinder: bool, rounding: f32, half: vec3<f32>, }

fn world_shape_geometry(rec: u32) -> WorldShapeGeometry {
    var g: WorldShapeGeometry;
    g.is_plane = model_f32(rec + 5u) != 0.0;
    g.is_cylinder = model_f32(rec + 6u) != 0.0;
    g.rounding = model_f32(rec + 7u);
    g.half = model_vec3(rec + 16u);
    return g;
}

// +1 or -1 per component, +1 at zero.
fn sign_or_plus(p: vec3<f32>) -> vec3<f32> {
    return select(vec3<f32>(-1.0), vec3<f32>(1.0), p >= vec3<f32>(0.0));
}

// One-hot of the largest component (x before y before z on ties).
fn largest_axis(q: vec3<f32>) -> vec3<f32> {
    let x = q.x >= q.y && q.x >= q.z;
    let y = !x && q.y >= q.z;
    return vec3<f32>(select(0.0, 1.0, x), select(0.0, 1.0, y), select(0.0, 1.0, !x && !y));
}

struct WorldDistance { dist: f32, normal: vec3<f32>, }

// Signed distance from a point `l` (shape frame) to the shape's surface, and the outward unit
// normal there (shape frame).
fn world_distance(l: vec3<f32>, g: WorldShapeGeometry) -> WorldDistance {
    let rho = length(l.xy);
    let u = l.xy / max(rho, 1.0e-9);
    let p = select(l, vec3<f32>(rho, 0.0, l.z), g.is_cylinder);
    let s = sign_or_plus(p);
    let q = abs(p) - g.half;
    let m = max(q, vec3<f32>(0.0));
    let len = length(m);
    let outside = len > 0.0;
    let inner = min(max(q.x, max(q.y, q.z)), 0.0);
    let nq = select(largest_axis(q), m / max(len, 1.0e-30), outside);
    let np = s * nq;
    var out: WorldDistance;
    out.dist = select(len + inner - g.rounding, l.z, g.is_plane);
    out.normal = select(select(np, vec3<f32>(np.x * u, np.z), g.is_cylinder), vec3<f32>(0.0, 0.0, 1.0), g.is_plane);
    return out;
}

fn world_contact_rows_forward(i: u32) {
    for (var c = 0u; c < hdr.n_world_contacts; c++) {
        let rec = hdr.off_world_contact + c * WORLD_CONTACT_RECORD_LEN;
        let b = model_u32(rec);
        let radius = model_f32(rec + 4u);
        let shape = world_shape_geometry(rec);
        let shape_rot = model_quat(rec + 8u);
        let x = body_position(b, i);
        let centre = x + quat_rotate(body_orientation(b, i), model_vec3(rec + 1u));
        let local = quat_rotate(quat_conj(shape_rot), centre - model_vec3(rec + 12u));
        let wd = world_distance(local, shape);
        let n = quat_rotate(shape_rot, wd.normal);
        let arm = centre - radius * n - x;
        let t = tangent_basis(n);
        var frame: ContactFrame;
        // The world is body 0: its arm is irrelevant (zero inverse mass, zero velocity).
        frame.normal = point_jacobian(n, vec3<f32>(0.0), arm);
        frame.tangent1 = point_jacobian(t[0], vec3<f32>(0.0), arm);
        frame.tangent2 = point_jacobian(t[1], vec3<f32>(0.0), arm);
        frame.gap = wd.dist - radius;
        frame.approach_speed = dot(body_velocity(b, i) + cross(body_angular_velocity(b, i), arm), n);
        let p = hdr.p_world_contact + c * 2u;
        contact_rows_write(hdr.row_world_contact + 3u * c, i, frame, param(p, i), param(p + 1u, i));
    }
}

// Adjoint of `world_distance`: the adjoint of the point from those of the distance and normal.
fn world_distance_adjoint(l: vec3<f32>, g: WorldShapeGeometry, d_dist: f32, d_normal: vec3<f32>) -> vec3<f32> {
    let rho = length(l.xy);
    let u = l.xy / max(rho, 1.0e-9);
    let p = select(l, vec3<f32>(rho, 0.0, l.z), g.is_cylinder);
    let s = sign_or_plus(p);
    let q = abs(p) - g.half;
    let m = max(q, vec3<f32>(0.0));
    let len = length(m);
    let outside = len > 0.0;
    let axis = largest_axis(q);
    let nq = select(axis, m / max(len, 1.0e-30), outside);
    let np = s * nq;
    let d_box_dist = select(d_dist, 0.0, g.is_plane);
    let d_nl = select(d_normal, vec3<f32>(0.0), g.is_plane);
    let d_np = select(d_nl, vec3<f32>(dot(d_nl.xy, u), 0.0, d_nl.z), g.is_cylinder);
    let d_u = np.x * d_nl.xy;
    let d_nq = s * d_np;
    let d_m = (d_nq - nq * dot(nq, d_nq)) / max(len, 1.0e-30) + nq * d_box_dist;
    let d_q = select(axis * d_box_dist, select(vec3<f32>(0.0), d_m, q > vec3<f32>(0.0)), outside);
    let d_p = s * d_q;
    let d_rho_dl = select(vec2<f32>(0.0), l.xy / rho, rho > 0.0);
    let d_u_dl = select(d_u / 1.0e-9, (d_u - u * dot(u, d_u)) / rho, rho > 1.0e-9);
    let radial = vec3<f32>(d_p.x * d_rho_dl + d_u_dl, d_p.z);
    return select(d_p, radial, g.is_cylinder) + vec3<f32>(0.0, 0.0, select(0.0, d_dist, g.is_plane));
}

fn world_contact_rows_adjoint(i: u32) {
    for (var c_rev = 0u; c_rev < hdr.n_world_contacts; c_rev++) {
        let c = hdr.n_world_contacts - 1u - c_rev;
        let rec = hdr.off_world_contact + c * WORLD_CONTACT_RECORD_LEN;
        let b = model_u32(rec);
        let offset = model_vec3(rec + 1u);
        let radius = model_f32(rec + 4u);
        let shape = world_shape_geometry(rec);
        let shape_rot = model_quat(rec + 8u);
        let x = body_position(b, i);
        let q = body_orientation(b, i);
        let w = body_angular_velocity(b, i);
        let centre = x + quat_rotate(q, offset);
        let local = quat_rotate(quat_conj(shape_rot), centre - model_vec3(rec + 12u));
        let wd = world_distance(local, shape);
        let n = quat_rotate(shape_rot, wd.normal);
        let arm = centre - radius * n - x;
        let t = tangent_basis(n);
        let relative = body_velocity(b, i) + cross(w, arm);
        let zero = vec3<f32>(0.0);
        var frame: ContactFrame;
        frame.normal = point_jacobian(n, zero, arm);
        frame.tangent1 = point_jacobian(t[0], zero, arm);
        frame.tangent2 = point_jacobian(t[1], zero, arm);
        frame.gap = wd.dist - radius;
        frame.approach_speed = dot(relative, n);
        let p = hdr.p_world_contact + c * 2u;
        let d = contact_rows_write_adjoint(hdr.row_world_contact + 3u * c, i, frame, param(p + 1u, i));
        param_adj_add(p, i, d.friction);
        param_adj_add(p + 1u, i, d.restitution);
        let j0 = point_jacobian_adjoint(n, zero, arm, d.frame.normal);
        let j1 = point_jacobian_adjoint(t[0], zero, arm, d.frame.tangent1);
        let j2 = point_jacobian_adjoint(t[1], zero, arm, d.frame.tangent2);
        let d_rel = n * d.frame.approach_speed;
        let d_arm = j0.arm_b + j1.arm_b + j2.arm_b + cross(d_rel, w);
        let d_n = j0.dir + tangent_basis_adjoint(n, j1.dir, j2.dir) + relative * d.frame.approach_speed
                - radius * d_arm;
        let slot = body_slot(b);
        state_adj_add_vec3(slot + 7u, i, d_rel);
        state_adj_add_vec3(slot + 10u, i, cross(arm, d_rel));
        let d_local = world_distance_adjoint(local, shape, d.frame.gap, quat_rotate(quat_conj(shape_rot), d_n));
        let d_centre = d_arm + quat_rotate(shape_rot, d_local);
        state_adj_add_vec3(slot, i, d_centre - d_arm);
        state_adj_add_quat(slot + 3u, i, quat_rotate_adjoint(q, offset, d_centre).q);
    }
}
