//! Packing the model's records and constraint rows section by section: joints, locks,
//! limits, actuators, contacts, passive rows, sphere pairs and tendons.

use glam::{Quat, Vec3};

use super::{
    BODY_PARAM_LEN, ContactShapes, JointPacking, Packing, ParamOffsets, ParamSlot,
    ROW_BLOCK_FOLLOWER, TendonSections, UNBOUNDED, WorldContacts, passive_rows, stride,
};
use crate::model::{ActuatorKind, Model, ShapeKind, WorldShapeKind};

fn push_f32(v: &mut Vec<u32>, x: f32) {
    v.push(x.to_bits());
}

/// A shape's contact points in its body's frame, with their radii: a sphere's centre, a
/// capsule's two segment ends, a box's eight corners (radius 0).
fn shape_contact_points(kind: &ShapeKind, centre: Vec3, rot: Quat) -> Vec<(Vec3, f32)> {
    match *kind {
        ShapeKind::Sphere { radius } => vec![(centre, radius)],
        ShapeKind::Capsule {
            radius,
            half_length,
        } => {
            let half = rot * Vec3::new(0.0, 0.0, half_length);
            vec![(centre + half, radius), (centre - half, radius)]
        }
        ShapeKind::Box { half_extents: h } => (0..8)
            .map(|corner| {
                let sign = |bit: usize| if corner >> bit & 1 == 1 { 1.0 } else { -1.0 };
                let local = Vec3::new(sign(0) * h[0], sign(1) * h[1], sign(2) * h[2]);
                (centre + rot * local, 0.0)
            })
            .collect(),
    }
}

/// A world shape as the kernels see it: `(is_plane, is_cylinder, rounding, core half
/// extents)`. Spheres, capsules and boxes are a box core (a point, a segment, a box) grown by
/// the rounding radius; a cylinder is a box in (radial distance, unused, axial) coordinates
/// whose unused extent is unbounded.
fn world_shape_core(kind: &WorldShapeKind) -> (f32, f32, f32, [f32; 3]) {
    match *kind {
        WorldShapeKind::Plane => (1.0, 0.0, 0.0, [0.0; 3]),
        WorldShapeKind::Sphere { radius } => (0.0, 0.0, radius, [0.0; 3]),
        WorldShapeKind::Capsule {
            radius,
            half_length,
        } => (0.0, 0.0, radius, [0.0, 0.0, half_length]),
        WorldShapeKind::Box { half_extents } => (0.0, 0.0, 0.0, half_extents),
        WorldShapeKind::Cylinder {
            radius,
            half_length,
        } => (0.0, 1.0, 0.0, [radius, UNBOUNDED, half_length]),
    }
}

/// Initial position and orientation of a body slot (slot 0 is the world).
fn body_pose(model: &Model, slot: usize) -> (Vec3, Quat) {
    if slot == 0 {
        (Vec3::ZERO, Quat::IDENTITY)
    } else {
        let b = &model.bodies[slot - 1];
        (
            Vec3::from_array(b.position),
            Quat::from_array(b.orientation).normalize(),
        )
    }
}

/// Inverse mass and inverse principal inertias of every body, the world's zeros first.
pub(super) fn push_body_params(model: &Model, params: &mut Vec<f32>, slots: &mut Vec<ParamSlot>) {
    params.extend_from_slice(&[0.0; BODY_PARAM_LEN]);
    slots.extend(std::iter::repeat_n(ParamSlot::World, BODY_PARAM_LEN));
    for (i, b) in model.bodies.iter().enumerate() {
        let inertia = b
            .inertia
            .unwrap_or_else(|| crate::model::inertia_from_shapes(b.mass, &b.shapes));
        params.push(1.0 / b.mass);
        slots.push(ParamSlot::InverseMass(i));
        for (k, moment) in inertia.iter().enumerate() {
            params.push(1.0 / moment);
            slots.push(ParamSlot::InverseInertia(i, k));
        }
    }
}

/// Joint records (bodies, hinge flag, frames in both bodies).
pub(super) fn pack_joints(
    model: &Model,
    body_slot: &dyn Fn(&str) -> usize,
    packed: &mut Vec<u32>,
) -> JointPacking {
    let mut joint_bodies = Vec::new();
    let mut anchors = Vec::new();
    for (j, kernel) in model.joints.iter().zip(crate::model::kernel_joints(model)) {
        let a = j.parent.as_deref().map(body_slot).unwrap_or(0);
        let b = body_slot(&j.child);
        joint_bodies.push((a, b));
        let frame = kernel.frame;
        let (xa, qa) = body_pose(model, a);
        let (xb, qb) = body_pose(model, b);
        let anchor = Vec3::from_array(j.anchor);
        let frame_a = (qa.conjugate() * frame).normalize();
        let frame_b = (qb.conjugate() * frame).normalize();
        let hinge = u32::from(kernel.hinge);
        packed.extend_from_slice(&[a as u32, b as u32, hinge, 0]);
        for x in frame_a.to_array().into_iter().chain(frame_b.to_array()) {
            push_f32(packed, x);
        }
        anchors.push((
            qa.conjugate() * (anchor - xa),
            qb.conjugate() * (anchor - xb),
        ));
    }
    JointPacking {
        joint_bodies,
        anchors,
    }
}

impl Packing {
    /// One lock record and row per locked axis of every joint.
    /// Words 2 and 3 of every lock record are the lock softness `[erp, cfm_scale]` (f32 bits)
    /// when `settings.lock_frequency` is set, else 0 (the kernels then use the header's joint
    /// softness, so that models without it keep their bits).
    pub(super) fn pack_locks(&mut self, model: &Model, joint_bodies: &[(usize, usize)]) {
        let kernel = crate::model::kernel_joints(model);
        let s = &model.settings;
        let softness = s.lock_frequency.map_or([0, 0], |f| {
            let (_, cfm_scale, erp) = super::softness(s.dt, f, s.joint_damping_ratio);
            [erp.to_bits(), cfm_scale.to_bits()]
        });
        for ji in 0..model.joints.len() {
            for (axis, locked) in kernel[ji].locked.iter().enumerate() {
                if *locked {
                    self.packed.extend_from_slice(&[
                        ji as u32,
                        axis as u32,
                        softness[0],
                        softness[1],
                    ]);
                    let (a, b) = joint_bodies[ji];
                    self.row_desc
                        .push([a as u32, b as u32, self.row_desc.len() as u32, 0]);
                }
            }
        }
    }

    /// One limit record and row per free axis of every limited joint.
    pub(super) fn pack_limits(&mut self, model: &Model, joint_bodies: &[(usize, usize)]) {
        for (ji, j) in model.joints.iter().enumerate() {
            if let Some([lo, hi]) = j.limits {
                // Limits are in the joint coordinate, which is `reference` at the initial pose.
                let (lo, hi) = (lo - j.reference, hi - j.reference);
                for &axis in j.free_axes() {
                    self.packed
                        .extend_from_slice(&[ji as u32, axis, lo.to_bits(), hi.to_bits()]);
                    self.limit_rows.push((ji as u32, axis, self.row_desc.len()));
                    let (a, b) = joint_bodies[ji];
                    self.row_desc
                        .push([a as u32, b as u32, self.row_desc.len() as u32, 0]);
                }
            }
        }
    }

    /// Servo records and rows, then the force actuators' records (which have no row); returns
    /// the offset and count of the force records. An affine actuator is a force record whose
    /// last word will point to its law (pushed onto `affine_laws` with its force record's
    /// index, for [`link_affine_laws`] to place after every section).
    pub(super) fn pack_actuators(
        &mut self,
        model: &Model,
        joint_indices: &std::collections::HashMap<&str, usize>,
        joint_bodies: &[(usize, usize)],
        affine_laws: &mut Vec<(usize, Vec<u32>)>,
    ) -> (usize, usize) {
        let mut force_records = Vec::new();
        let mut activations = 0;
        for (ai, act) in model.actuators.iter().enumerate() {
            let ji = joint_indices.get(act.joint.as_str()).copied().unwrap_or(0);
            let axis = model.joints[ji].free_axes()[act.axis as usize];
            let (a, b) = joint_bodies[ji];
            match act.kind {
                ActuatorKind::PositionServo | ActuatorKind::VelocityServo => {
                    let kind = u32::from(act.kind == ActuatorKind::VelocityServo);
                    self.packed
                        .extend_from_slice(&[ai as u32, ji as u32, axis, kind]);
                    self.row_desc
                        .push([a as u32, b as u32, self.row_desc.len() as u32, 0]);
                }
                ActuatorKind::Force => force_records.push([ai as u32, ji as u32, axis, 0]),
                ActuatorKind::Affine => {
                    if let Some(law) = &act.affine {
                        let record = affine_law(model, joint_indices, law, &mut activations);
                        affine_laws.push((force_records.len(), record));
                    }
                    force_records.push([ai as u32, ji as u32, axis, 0]);
                }
            }
        }
        // Tendon springs: affine laws without a command, marked by the actuator index
        // `n_actuators` (no command slot; the kernels read none for it).
        for t in &model.tendons {
            let Some(spring) = t.spring else { continue };
            if spring.stiffness == 0.0 || t.terms.is_empty() {
                continue;
            }
            affine_laws.push((
                force_records.len(),
                tendon_spring_law(model, joint_indices, t, spring),
            ));
            force_records.push([model.actuators.len() as u32, 0, 0, 0]);
        }
        let off_force = self.packed.len();
        for r in &force_records {
            self.packed.extend_from_slice(r);
        }
        (off_force, force_records.len())
    }

    /// Ground contact points from every shape (three rows each), collecting the spheres for
    /// the pair section.
    pub(super) fn pack_ground_contacts(&mut self, model: &Model) -> ContactShapes {
        let mut contact_body = Vec::new();
        let mut contact_params = Vec::new();
        let mut spheres: Vec<(usize, Vec3, f32)> = Vec::new();
        for (bi, body) in model.bodies.iter().enumerate() {
            for shape in &body.shapes {
                let rot = Quat::from_array(shape.rotation).normalize();
                let centre = Vec3::from_array(shape.offset);
                let points = shape_contact_points(&shape.kind, centre, rot);
                if let ShapeKind::Sphere { radius } = shape.kind {
                    spheres.push((bi + 1, centre, radius));
                }
                if !model.settings.ground {
                    continue;
                }
                for (p, r) in points {
                    self.packed.extend_from_slice(&[(bi + 1) as u32]);
                    for x in [p.x, p.y, p.z, r] {
                        push_f32(&mut self.packed, x);
                    }
                    self.packed.extend_from_slice(&[0, 0, 0]);
                    let normal = self.row_desc.len() as u32;
                    self.row_desc.push([0, (bi + 1) as u32, normal, 0]);
                    self.row_desc.push([0, (bi + 1) as u32, normal, 0]);
                    self.row_desc.push([0, (bi + 1) as u32, normal, 0]);
                    contact_body.push(bi);
                    contact_params.push((body.friction, body.restitution));
                }
            }
        }
        ContactShapes {
            contact_body,
            contact_params,
            spheres,
        }
    }

    /// One record and three rows for every body contact point against every world shape.
    pub(super) fn pack_world_contacts(&mut self, model: &Model) -> WorldContacts {
        let mut contacts = Vec::new();
        let mut params = Vec::new();
        for (bi, body) in model.bodies.iter().enumerate() {
            for shape in &body.shapes {
                let rot = Quat::from_array(shape.rotation).normalize();
                let centre = Vec3::from_array(shape.offset);
                for (p, r) in shape_contact_points(&shape.kind, centre, rot) {
                    for (wi, world) in model.world_shapes.iter().enumerate() {
                        let (plane, cylinder, rounding, h) = world_shape_core(&world.kind);
                        let q = Quat::from_array(world.rotation).normalize();
                        self.packed.push((bi + 1) as u32);
                        for x in [p.x, p.y, p.z, r, plane, cylinder, rounding] {
                            push_f32(&mut self.packed, x);
                        }
                        for x in q.to_array().into_iter().chain(world.position) {
                            push_f32(&mut self.packed, x);
                        }
                        self.packed.push(0);
                        for x in h {
                            push_f32(&mut self.packed, x);
                        }
                        self.packed.push(0);
                        let normal = self.row_desc.len() as u32;
                        for _ in 0..3 {
                            self.row_desc.push([0, (bi + 1) as u32, normal, 0]);
                        }
                        contacts.push((bi, wi));
                        params.push((body.friction, body.restitution));
                    }
                }
            }
        }
        WorldContacts { contacts, params }
    }

    /// The passive rows of every joint: their records (packed after the row table, returned)
    /// and their rows.
    pub(super) fn pack_passive(
        &mut self,
        model: &Model,
        joint_bodies: &[(usize, usize)],
    ) -> Vec<u32> {
        let mut records = Vec::new();
        for (ji, &(a, b)) in joint_bodies.iter().enumerate() {
            for row in passive_rows(model, ji) {
                records.extend_from_slice(&[
                    row.joint,
                    row.axis,
                    row.start_velocity_weight.to_bits(),
                    0,
                    row.cfm.to_bits(),
                    row.coordinate_gain.to_bits(),
                    row.coordinate_target.to_bits(),
                    row.bound.to_bits(),
                ]);
                let passive_row = self.row_desc.len();
                self.row_desc
                    .push([a as u32, b as u32, passive_row as u32, 0]);
                let limit = self
                    .limit_rows
                    .iter()
                    .find(|&&(j, axis, _)| j == row.joint && axis == row.axis);
                // Only an unbounded rotor row: the block solve has no bounds on its passive row.
                let rotor =
                    row.start_velocity_weight > 0.0 && row.cfm > 0.0 && row.bound >= UNBOUNDED;
                if let (true, Some(&(_, _, limit_row))) = (rotor, limit) {
                    self.row_desc[limit_row][3] = passive_row as u32 + 1;
                    self.row_desc[passive_row][3] = ROW_BLOCK_FOLLOWER;
                }
            }
        }
        records
    }

    /// Sphere pairs between bodies that share no joint (three rows each); returns each pair's
    /// friction and restitution.
    pub(super) fn pack_sphere_pairs(
        &mut self,
        model: &Model,
        spheres: &[(usize, Vec3, f32)],
        joint_bodies: &[(usize, usize)],
    ) -> Vec<(f32, f32)> {
        let mut pair_params = Vec::new();
        if model.settings.sphere_collisions {
            for (ia, &(a, oa, ra)) in spheres.iter().enumerate() {
                for &(b, ob, rb) in &spheres[ia + 1..] {
                    let jointed = joint_bodies
                        .iter()
                        .any(|&(p, c)| (p == a && c == b) || (p == b && c == a));
                    if a == b || jointed {
                        continue;
                    }
                    self.packed.extend_from_slice(&[a as u32, b as u32]);
                    for x in [oa.x, oa.y, oa.z, ra, ob.x, ob.y, ob.z, rb] {
                        push_f32(&mut self.packed, x);
                    }
                    self.packed.extend_from_slice(&[0, 0]);
                    let normal = self.row_desc.len() as u32;
                    for _ in 0..3 {
                        self.row_desc.push([a as u32, b as u32, normal, 0]);
                    }
                    let (ba, bb) = (&model.bodies[a - 1], &model.bodies[b - 1]);
                    pair_params.push((
                        0.5 * (ba.friction + bb.friction),
                        ba.restitution.max(bb.restitution),
                    ));
                }
            }
        }
        pair_params
    }

    /// A spatial tendon's records and rows: the record's term count 0 marks it, and its first
    /// term index points at two site records `[body slot, position x, y, z]` in the term
    /// table (the kernels read the sites where a fixed tendon's terms are).
    fn pack_spatial_tendon(
        &mut self,
        model: &Model,
        t: &crate::model::Tendon,
        terms: &mut Vec<[u32; 4]>,
        body_slot: &dyn Fn(&str) -> usize,
    ) {
        // A validated model's spatial tendons have two sites on two bodies.
        if t.site_bodies(model).is_err() {
            return;
        }
        let first_term = terms.len() as u32;
        let mut slots = [0u32; 2];
        for (slot, site) in slots.iter_mut().zip(&t.sites) {
            *slot = site.body.as_deref().map(body_slot).unwrap_or(0) as u32;
            let [x, y, z] = site.position.map(f32::to_bits);
            terms.push([*slot, x, y, z]);
        }
        // A distance never goes below 0, so a lower limit of 0 or less never binds; it must not
        // become the nearer bound either, whose speculative row would stop the sites from
        // passing through each other.
        let limits = t
            .limits
            .map(|[lower, upper]| [if lower <= 0.0 { -UNBOUNDED } else { lower }, upper]);
        let bounds = t.length.map(|l| [l, l]).into_iter().chain(limits);
        for [lower, upper] in bounds {
            self.packed
                .extend_from_slice(&[first_term, 0, lower.to_bits(), upper.to_bits()]);
            self.row_desc
                .push([slots[0], slots[1], self.row_desc.len() as u32, 0]);
        }
    }

    /// One tendon record and row per held length and per limited tendon (rows on the chain's
    /// end bodies, see [`crate::model::Tendon`]), then every record's terms in chain order.
    pub(super) fn pack_tendons(
        &mut self,
        model: &Model,
        joint_indices: &std::collections::HashMap<&str, usize>,
        body_slot: &dyn Fn(&str) -> usize,
    ) -> TendonSections {
        let off_tendon = self.packed.len();
        let row_tendon = self.row_desc.len();
        let mut terms: Vec<[u32; 4]> = Vec::new();
        for t in &model.tendons {
            if t.is_spatial() {
                self.pack_spatial_tendon(model, t, &mut terms, body_slot);
                continue;
            }
            // A validated model's tendons chain; an unchainable one gets no row.
            let Ok(chain) = t.chain(model) else { continue };
            let a = chain.parent.as_deref().map(body_slot).unwrap_or(0);
            let b = body_slot(&chain.child);
            let first_term = terms.len() as u32;
            for &k in &chain.order {
                let term = &t.terms[k];
                let ji = joint_indices.get(term.joint.as_str()).copied().unwrap_or(0);
                let axis = model.joints[ji].free_axes()[term.axis as usize];
                terms.push([ji as u32, axis, term.coefficient.to_bits(), 0]);
            }
            let n_terms = chain.order.len() as u32;
            let bounds = t.length.map(|l| [l, l]).into_iter().chain(t.limits);
            for [lower, upper] in bounds {
                self.packed.extend_from_slice(&[
                    first_term,
                    n_terms,
                    lower.to_bits(),
                    upper.to_bits(),
                ]);
                self.row_desc
                    .push([a as u32, b as u32, self.row_desc.len() as u32, 0]);
            }
        }
        let n_tendon = self.row_desc.len() - row_tendon;
        // A spatial tendon's record (0 terms) reads its two site records.
        let n_tendon_terms = (off_tendon..self.packed.len())
            .step_by(stride::TENDON)
            .map(|k| match self.packed[k + 1] {
                0 => 2,
                n => n as usize,
            })
            .sum();
        let off_tendon_term = self.packed.len();
        for r in &terms {
            self.packed.extend_from_slice(r);
        }
        TendonSections {
            off_tendon,
            off_tendon_term,
            row_tendon,
            n_tendon,
            n_tendon_terms,
        }
    }
}

/// Parameters after the bodies': contacts, actuators, joint anchors, sphere pairs.
pub(super) fn push_row_params(
    model: &Model,
    contact_params: &[(f32, f32)],
    anchors: &[(Vec3, Vec3)],
    pair_params: &[(f32, f32)],
    params: &mut Vec<f32>,
    slots: &mut Vec<ParamSlot>,
) -> ParamOffsets {
    let p_contact = params.len();
    for (c, (mu, e)) in contact_params.iter().enumerate() {
        params.extend_from_slice(&[*mu, *e]);
        slots.extend([
            ParamSlot::ContactFriction(c),
            ParamSlot::ContactRestitution(c),
        ]);
    }
    let p_actuator = params.len();
    for (ai, a) in model.actuators.iter().enumerate() {
        params.extend_from_slice(&[a.gain, a.max_force, a.max_velocity]);
        slots.extend([
            ParamSlot::ServoGain(ai),
            ParamSlot::MaxForce(ai),
            ParamSlot::MaxVelocity(ai),
        ]);
    }
    let p_joint = params.len();
    for (ji, (aa, ab)) in anchors.iter().enumerate() {
        params.extend_from_slice(&aa.to_array());
        params.extend_from_slice(&ab.to_array());
        slots.extend((0..3).map(|k| ParamSlot::AnchorParent(ji, k)));
        slots.extend((0..3).map(|k| ParamSlot::AnchorChild(ji, k)));
    }
    let p_pair = params.len();
    for (p, (mu, e)) in pair_params.iter().enumerate() {
        params.extend_from_slice(&[*mu, *e]);
        slots.extend([ParamSlot::PairFriction(p), ParamSlot::PairRestitution(p)]);
    }
    ParamOffsets {
        p_contact,
        p_actuator,
        p_joint,
        p_pair,
    }
}

/// The words of an affine law's record before its terms (`AFFINE_LAW_HEAD` in
/// `shaders/actuator.wgsl`).
pub(crate) const AFFINE_LAW_HEAD: usize = 13;
/// Word 8 of an affine law whose actuator has no activation. Before [`link_affine_laws`] the
/// word of one that has holds the activation's ordinal, after it the activation's state slot.
pub(crate) const NO_ACTIVATION: u32 = u32::MAX;

/// An affine actuator's law record: `[n_terms, gain, bias0, bias1, ctrl_lo, ctrl_hi,
/// force_lo, force_hi, activation, command_rate, activation_rate, act_lo, act_hi]` then
/// `[joint, axis, coefficient]` per term. The constant bias absorbs the joints' references,
/// since backdrive's coordinates are measured from them. `activation` is the ordinal
/// `activations` gives it (the count so far, incremented), or [`NO_ACTIVATION`]; the step
/// moves the activation by `dt * (command_rate * u - activation_rate * act)`, then clamps it.
fn affine_law(
    model: &Model,
    joint_indices: &std::collections::HashMap<&str, usize>,
    law: &crate::model::AffineForce,
    activations: &mut u32,
) -> Vec<u32> {
    let mut terms = Vec::new();
    let mut length_at_zero = 0.0f64;
    for t in &law.terms {
        let ji = joint_indices.get(t.joint.as_str()).copied().unwrap_or(0);
        let joint = &model.joints[ji];
        let axis = joint.free_axes()[t.axis as usize];
        length_at_zero += f64::from(t.coefficient) * f64::from(joint.reference);
        terms.extend_from_slice(&[ji as u32, axis, t.coefficient.to_bits()]);
    }
    let bias0 = (f64::from(law.bias[0]) + f64::from(law.bias[1]) * length_at_zero) as f32;
    let mut record = vec![
        law.terms.len() as u32,
        law.gain.to_bits(),
        bias0.to_bits(),
        law.bias[1].to_bits(),
        law.ctrl_range[0].to_bits(),
        law.ctrl_range[1].to_bits(),
        law.force_range[0].to_bits(),
        law.force_range[1].to_bits(),
    ];
    match &law.activation {
        Some(activation) => {
            let (command_rate, activation_rate) = activation.rates(model.settings.dt);
            let [lo, hi] = activation.range.unwrap_or([-UNBOUNDED, UNBOUNDED]);
            record.extend_from_slice(&[
                *activations,
                command_rate.to_bits(),
                activation_rate.to_bits(),
                lo.to_bits(),
                hi.to_bits(),
            ]);
            *activations += 1;
        }
        None => record.extend_from_slice(&no_activation()),
    }
    debug_assert_eq!(record.len(), AFFINE_LAW_HEAD);
    record.extend(terms);
    record
}

/// The activation words of a law without activation.
fn no_activation() -> [u32; 5] {
    [
        NO_ACTIVATION,
        0.0f32.to_bits(),
        0.0f32.to_bits(),
        (-UNBOUNDED).to_bits(),
        UNBOUNDED.to_bits(),
    ]
}

/// The number of actuators with an activation: the per-instance state holds one float for
/// each, after the warm-start impulses, in actuator order.
pub(super) fn activation_count(model: &Model) -> usize {
    model
        .actuators
        .iter()
        .filter(|a| a.affine.as_ref().is_some_and(|l| l.activation.is_some()))
        .count()
}

/// A tendon spring as an affine law: gain 0, bias `[stiffness * rest_length, -stiffness]`
/// over the tendon's terms, unbounded. Tendon lengths count from the model's initial pose,
/// as the kernels' joint coordinates do, so no reference is added.
fn tendon_spring_law(
    model: &Model,
    joint_indices: &std::collections::HashMap<&str, usize>,
    tendon: &crate::model::Tendon,
    spring: crate::model::TendonSpring,
) -> Vec<u32> {
    const UNBOUNDED_LAW: f32 = 1e20;
    let mut record = vec![
        tendon.terms.len() as u32,
        0.0f32.to_bits(),
        (spring.stiffness * spring.rest_length).to_bits(),
        (-spring.stiffness).to_bits(),
        (-UNBOUNDED_LAW).to_bits(),
        UNBOUNDED_LAW.to_bits(),
        (-UNBOUNDED_LAW).to_bits(),
        UNBOUNDED_LAW.to_bits(),
    ];
    record.extend_from_slice(&no_activation());
    for t in &tendon.terms {
        let ji = joint_indices.get(t.joint.as_str()).copied().unwrap_or(0);
        let axis = model.joints[ji].kind.free_axes()[t.axis as usize];
        record.extend_from_slice(&[ji as u32, axis, t.coefficient.to_bits()]);
    }
    record
}

/// Appends the affine laws to `packed`, points their force records at them and turns their
/// activations' ordinals into state slots (`state_activation` onwards).
pub(super) fn link_affine_laws(
    packed: &mut Vec<u32>,
    off_force: usize,
    laws: Vec<(usize, Vec<u32>)>,
    state_activation: u32,
) {
    for (force_record, mut law) in laws {
        if law[8] != NO_ACTIVATION {
            law[8] += state_activation;
        }
        packed[off_force + force_record * 4 + 3] = packed.len() as u32;
        packed.extend(law);
    }
}
