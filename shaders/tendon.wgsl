// Tendons: a linear combination of joint coordinates, length = sum_t c_t q_t, held at a length
// (a record with lower == upper: an equality row, like a joint lock) or kept within
// [lower, upper] (a one-sided row on the nearer bound, like a joint limit). The model's
// validation admits only tendons whose row acts on two bodies: one joint's coordinate, or a
// chain of hinges whose scaled axes c_t x_t are one vector, so that the Jacobian terms of the
// bodies inside the chain cancel. The row's Jacobian is then the first term's, scaled by its
// coefficient, between the chain's first parent and last child (the row's bodies); the
// length sums every term's coordinate, so it is MuJoCo's tendon length however far the
// joints turn.

// A spatial tendon (a record of 0 terms) is the straight distance between two sites, each a
// point fixed on a body (term records [body slot, position in the body's frame]): its row
// is a point-to-point row along the line between the sites, on the sites' two bodies.

struct TendonLength {
    jac: RowJacobian,
    length: f32,
}

fn tendon_record(t: u32) -> u32 { return hdr.off_tendon + t * TENDON_RECORD_LEN; }
fn tendon_term_record(k: u32) -> u32 { return hdr.off_tendon_term + k * TENDON_TERM_RECORD_LEN; }

// The sites of a spatial tendon: their bodies, offsets in the body frames and world points.
struct TendonSites {
    a: u32, b: u32,
    offset_a: vec3<f32>, offset_b: vec3<f32>,
    qa: vec4<f32>, qb: vec4<f32>,
    arm_a: vec3<f32>, arm_b: vec3<f32>,
    d: vec3<f32>, dist: f32, n: vec3<f32>,
}

fn tendon_sites(first: u32, i: u32) -> TendonSites {
    let ta = tendon_term_record(first);
    let tb = tendon_term_record(first + 1u);
    var s: TendonSites;
    s.a = model_u32(ta);
    s.b = model_u32(tb);
    s.offset_a = model_vec3(ta + 1u);
    s.offset_b = model_vec3(tb + 1u);
    s.qa = body_orientation(s.a, i);
    s.qb = body_orientation(s.b, i);
    s.arm_a = quat_rotate(s.qa, s.offset_a);
    s.arm_b = quat_rotate(s.qb, s.offset_b);
    s.d = (body_position(s.b, i) + s.arm_b) - (body_position(s.a, i) + s.arm_a);
    s.dist = length(s.d);
    s.n = s.d / max(s.dist, 1.0e-9);
    return s;
}

fn tendon_length(t: u32, i: u32) -> TendonLength {
    let rec = tendon_record(t);
    let first = model_u32(rec);
    let n = model_u32(rec + 1u);
    if (n == 0u) {
        // Model data: the branch is uniform.
        let s = tendon_sites(first, i);
        return TendonLength(point_jacobian(s.n, s.arm_a, s.arm_b), s.dist);
    }
    let term = tendon_term_record(first);
    let c = model_f32(term + 2u);
    let ax = joint_axis(model_u32(term), model_u32(term + 1u), i);
    var out: TendonLength;
    out.jac = row_jacobian_scaled(ax.jac, c);
    out.length = c * ax.coordinate;
    for (var k = 1u; k < n; k++) {
        let other = tendon_term_record(first + k);
        let q = joint_axis(model_u32(other), model_u32(other + 1u), i).coordinate;
        out.length += model_f32(other + 2u) * q;
    }
    return out;
}

// Which side of a tendon row is active: `sign` orients the row so that lambda >= 0 pushes
// back inside (always 1 for a held length), `gap` is the signed distance to that bound.
struct TendonSide {
    sign: f32,
    gap: f32,
    held: bool,
    violated: bool,
}

fn tendon_side(t: u32, length: f32) -> TendonSide {
    let rec = tendon_record(t);
    let lower = model_f32(rec + 2u);
    let upper = model_f32(rec + 3u);
    let held = lower == upper;
    let at_lower = length - lower < upper - length || held;
    var out: TendonSide;
    out.sign = select(-1.0, 1.0, at_lower);
    out.gap = select(upper - length, length - lower, at_lower);
    out.held = held;
    out.violated = out.gap < 0.0 || held;
    return out;
}

fn tendon_rows_forward(i: u32) {
    let dt = hdr.dt;
    for (var t = 0u; t < hdr.n_tendon; t++) {
        let tl = tendon_length(t, i);
        let side = tendon_side(t, tl.length);
        let bias = select(side.gap / dt, hdr.joint_erp * side.gap / dt, side.violated);
        row_write(hdr.row_tendon + t, i, row_jacobian_scaled(tl.jac, side.sign), bias,
                  select(0.0, -UNBOUNDED, side.held), UNBOUNDED, 0.0,
                  hdr.joint_mass_scale, hdr.joint_cfm_scale);
    }
}

// ---- Adjoints.

// Adjoint of tendon_length: the Jacobian's adjoint goes to the first term's joint axis, the
// length's to every term's coordinate.
fn tendon_length_adjoint(t: u32, i: u32, d_jac: RowJacobian, d_length: f32) {
    let rec = tendon_record(t);
    let first = model_u32(rec);
    let n = model_u32(rec + 1u);
    if (n == 0u) {
        tendon_sites_adjoint(tendon_sites(first, i), i, d_jac, d_length);
        return;
    }
    let term = tendon_term_record(first);
    let c = model_f32(term + 2u);
    joint_axis_adjoint(model_u32(term), model_u32(term + 1u), i, row_jacobian_scaled(d_jac, c),
                       d_length * c);
    var none: RowJacobian;
    for (var k = 1u; k < n; k++) {
        let other = tendon_term_record(first + k);
        joint_axis_adjoint(model_u32(other), model_u32(other + 1u), i, none,
                           d_length * model_f32(other + 2u));
    }
}

// Adjoint of a spatial tendon's length and Jacobian, to its bodies' positions and
// orientations (the sites' offsets are model data).
fn tendon_sites_adjoint(s: TendonSites, i: u32, d_jac: RowJacobian, d_length: f32) {
    let pj = point_jacobian_adjoint(s.n, s.arm_a, s.arm_b, d_jac);
    let d_d = select(pj.dir / 1.0e-9, (pj.dir - s.n * dot(s.n, pj.dir)) / s.dist + s.n * d_length,
                     s.dist > 1.0e-9);
    let sa = body_slot(s.a);
    let sb = body_slot(s.b);
    state_adj_add_vec3(sa, i, -d_d);
    state_adj_add_vec3(sb, i, d_d);
    state_adj_add_quat(sa + 3u, i, quat_rotate_adjoint(s.qa, s.offset_a, pj.arm_a - d_d).q);
    state_adj_add_quat(sb + 3u, i, quat_rotate_adjoint(s.qb, s.offset_b, pj.arm_b + d_d).q);
}

fn tendon_rows_adjoint(i: u32) {
    let dt = hdr.dt;
    for (var t_rev = 0u; t_rev < hdr.n_tendon; t_rev++) {
        let t = hdr.n_tendon - 1u - t_rev;
        let tl = tendon_length(t, i);
        let side = tendon_side(t, tl.length);
        let d = row_write_adjoint(hdr.row_tendon + t, i, row_jacobian_scaled(tl.jac, side.sign),
                                  hdr.joint_mass_scale, hdr.joint_cfm_scale);
        let d_gap = d.bias * select(1.0 / dt, hdr.joint_erp / dt, side.violated);
        tendon_length_adjoint(t, i, row_jacobian_scaled(d.jac, side.sign), d_gap * side.sign);
    }
}
