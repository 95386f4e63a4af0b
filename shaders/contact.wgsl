// Contacts: points with a radius (sphere centres, capsule segment ends, box corners) against
// the ground plane z = 0, and sphere-sphere pairs between bodies. Each contact owns three
// consecutive rows: the normal (lambda >= 0) and two Coulomb friction rows clamped to
// +-mu * lambda_normal.
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
    row_write(first_row, i, frame.normal, bias, 0.0, UNBOUNDED, 0.0,
              hdr.contact_mass_scale, hdr.contact_cfm_scale);
    row_write(first_row + 1u, i, frame.tangent1, 0.0, 0.0, 0.0, friction, 1.0, 0.0);
    row_write(first_row + 2u, i, frame.tangent2, 0.0, 0.0, 0.0, friction, 1.0, 0.0);
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
