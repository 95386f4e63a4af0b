//! Compound joints: sliders and at most one hinge between the same two bodies that share one
//! joint frame, as MuJoCo composes a body's slide joints followed by a hinge.
//!
//! Each member stays a [`Joint`] of its own, with its own coordinate, limits, passive rows,
//! actuators and tendon terms on the one frame axis it frees; the kernels see every member's
//! record with the compound's frame, and only the compound's first member carries lock rows,
//! on the axes no member frees. The kernels need nothing new: a joint's rows are already
//! generic over which frame axes are locked and which are free.

use std::collections::HashMap;

use glam::{Mat3, Quat, Vec3};
use serde::{Deserialize, Serialize};

use super::{Joint, JointKind, Model};
use crate::error::{FieldPath, ModelError};

/// Membership of a joint in a compound joint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedFrame {
    /// Name of the compound: the joints that give the same name share one joint frame. They
    /// join the same two bodies at the same anchor.
    pub compound: String,
    /// The axis of the shared frame this joint frees: 0, 1 or 2 for a slider (translation
    /// along the frame's x, y or z axis, which is the slider's `axis`), 3 for the hinge
    /// (rotation about the frame's x axis, the hinge's `axis`). Translations are measured
    /// along axes fixed in the parent, at the anchor, which turns with the child: MuJoCo's
    /// slides followed by a hinge.
    pub frame_axis: u32,
}

/// Largest `|cos|` between two member axes taken as perpendicular, and largest `1 - cos`
/// between a hinge and the slider along it taken as parallel.
const AXIS_TOLERANCE: f32 = 1e-4;

/// A joint as the kernels see it: its joint frame's world orientation at the initial pose,
/// whether its rotation coordinates are a hinge's (twist about x, swing on y and z), and the
/// frame axes its record locks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct KernelJoint {
    pub frame: Quat,
    pub hinge: bool,
    pub locked: [bool; 6],
}

impl Joint {
    /// The joint-frame axes (x, y, z translation, then x, y, z rotation) a limit, an actuator
    /// or a passive row of this joint acts on, in the order its `axis` indices count them.
    pub fn free_axes(&self) -> &'static [u32] {
        match &self.shared_frame {
            Some(s) => match s.frame_axis {
                0 => &[0],
                1 => &[1],
                2 => &[2],
                _ => &[3],
            },
            None => self.kind.free_axes(),
        }
    }
}

/// The direction frame axis `k` (0..3) has in a member: a hinge's axis is the frame's x.
fn direction_slot(s: &SharedFrame) -> usize {
    if s.frame_axis == 3 {
        0
    } else {
        s.frame_axis as usize
    }
}

/// The members of each compound, in model order.
fn compounds(model: &Model) -> HashMap<&str, Vec<usize>> {
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, j) in model.joints.iter().enumerate() {
        if let Some(s) = &j.shared_frame {
            groups.entry(s.compound.as_str()).or_default().push(i);
        }
    }
    groups
}

/// The world orientation of a compound's frame from its members' axes.
fn compound_frame(model: &Model, members: &[usize]) -> Quat {
    let mut e: [Option<Vec3>; 3] = [None; 3];
    for &m in members {
        let j = &model.joints[m];
        if let Some(s) = &j.shared_frame {
            e[direction_slot(s)].get_or_insert(Vec3::from_array(j.axis).normalize());
        }
    }
    let from_cols = |x: Vec3, y: Vec3| {
        let y = (y - x * x.dot(y)).normalize();
        Quat::from_mat3(&Mat3::from_cols(x, y, x.cross(y))).normalize()
    };
    match e {
        [Some(x), Some(y), _] => from_cols(x, y),
        [Some(x), None, Some(z)] => from_cols(x, z.cross(x)),
        [None, Some(y), Some(z)] => from_cols(y.cross(z).normalize(), y),
        [Some(x), None, None] => Quat::from_rotation_arc(Vec3::X, x),
        [None, Some(y), None] => Quat::from_rotation_arc(Vec3::Y, y),
        [None, None, Some(z)] => Quat::from_rotation_arc(Vec3::Z, z),
        [None, None, None] => Quat::IDENTITY,
    }
}

/// Every joint as the kernels see it. A joint outside a compound keeps the frame its kind
/// has always had (x along its axis, the rest from the shortest rotation).
pub(crate) fn kernel_joints(model: &Model) -> Vec<KernelJoint> {
    let groups = compounds(model);
    let frames: HashMap<&str, (Quat, [bool; 6])> = groups
        .iter()
        .map(|(name, members)| {
            let mut free = [false; 6];
            for &m in members {
                if let Some(s) = &model.joints[m].shared_frame {
                    free[(s.frame_axis as usize).min(3)] = true;
                }
            }
            (*name, (compound_frame(model, members), free))
        })
        .collect();
    model
        .joints
        .iter()
        .enumerate()
        .map(|(i, j)| match &j.shared_frame {
            None => KernelJoint {
                frame: Quat::from_rotation_arc(Vec3::X, Vec3::from_array(j.axis).normalize()),
                hinge: j.kind == JointKind::Hinge,
                locked: j.kind.locked_axes(),
            },
            Some(s) => {
                let (frame, free) = frames[s.compound.as_str()];
                let lead = groups[s.compound.as_str()][0] == i;
                KernelJoint {
                    frame,
                    hinge: free[3],
                    locked: if lead { free.map(|f| !f) } else { [false; 6] },
                }
            }
        })
        .collect()
}

fn err(i: usize, key: &str, message: String) -> ModelError {
    ModelError {
        file: None,
        line: None,
        field: FieldPath::item("joint", i, key),
        message,
    }
}

/// Checks the compounds: members are sliders on frame axes 0..3 and a hinge on 3, each axis
/// freed once, between the first member's bodies at its anchor, with axes along (the hinge and
/// a slider on x, same direction) or perpendicular to each other and a right-handed frame.
pub(crate) fn validate_compounds(model: &Model) -> Result<(), ModelError> {
    let groups = compounds(model);
    let mut names: Vec<&&str> = groups.keys().collect();
    names.sort();
    for name in names {
        let members = &groups[*name];
        let lead = &model.joints[members[0]];
        let mut taken: [Option<usize>; 4] = [None; 4];
        let mut directions: Vec<(usize, usize, Vec3)> = Vec::new();
        for &m in members {
            let j = &model.joints[m];
            let Some(s) = &j.shared_frame else { continue };
            let fits = match j.kind {
                JointKind::Slider => s.frame_axis < 3,
                JointKind::Hinge => s.frame_axis == 3,
                _ => false,
            };
            if !fits {
                return Err(err(
                    m,
                    "shared_frame.frame_axis",
                    format!(
                        "a {:?} joint cannot free frame axis {} of a compound joint: sliders \
                         free 0, 1 or 2, the hinge 3",
                        j.kind, s.frame_axis
                    ),
                ));
            }
            if let Some(other) = taken[s.frame_axis as usize].replace(m) {
                return Err(err(
                    m,
                    "shared_frame.frame_axis",
                    format!(
                        "joints '{}' and '{}' of compound '{name}' both free frame axis {}",
                        model.joints[other].name, j.name, s.frame_axis
                    ),
                ));
            }
            if j.parent != lead.parent || j.child != lead.child {
                return Err(err(
                    m,
                    "shared_frame",
                    format!(
                        "joint '{}' of compound '{name}' must join the same bodies as '{}'",
                        j.name, lead.name
                    ),
                ));
            }
            let a = Vec3::from_array(j.anchor);
            let b = Vec3::from_array(lead.anchor);
            if (a - b).length() > 1e-5 * b.length().max(1.0) {
                return Err(err(
                    m,
                    "anchor",
                    format!(
                        "joint '{}' of compound '{name}' must have the anchor of '{}' ({:?})",
                        j.name, lead.name, lead.anchor
                    ),
                ));
            }
            let axis = Vec3::from_array(j.axis).normalize();
            let slot = direction_slot(s);
            for &(other, other_slot, other_axis) in &directions {
                let cos = axis.dot(other_axis);
                let fine = if slot == other_slot {
                    cos >= 1.0 - AXIS_TOLERANCE
                } else {
                    cos.abs() <= AXIS_TOLERANCE
                };
                if !fine {
                    let want = if slot == other_slot {
                        "along"
                    } else {
                        "perpendicular to"
                    };
                    return Err(err(
                        m,
                        "axis",
                        format!(
                            "joint '{}' of compound '{name}' must have its axis {want} that of \
                             '{}' (cosine {cos})",
                            j.name, model.joints[other].name
                        ),
                    ));
                }
            }
            directions.push((m, slot, axis));
        }
        let along = |slot: usize| directions.iter().find(|d| d.1 == slot).map(|d| d.2);
        if let (Some(x), Some(y), Some(z)) = (along(0), along(1), along(2))
            && x.cross(y).dot(z) < 0.0
        {
            return Err(err(
                members[0],
                "shared_frame.frame_axis",
                format!(
                    "the axes of compound '{name}' on frame axes x, y, z form a left-handed \
                     frame: swap the frame axes of its y and z members"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelBuilder;

    /// dm_control's planar root: slides z and x, then the hinge y, on a torso.
    fn planar(edit: impl Fn(&mut Model)) -> Model {
        let anchor = [0.0, 0.0, 1.2];
        let mut model = ModelBuilder::new("planar")
            .body("torso", 3.0, [0.0, 0.0, 1.0])
            .joint(
                "rootz",
                JointKind::Slider,
                None,
                "torso",
                anchor,
                [0.0, 0.0, 1.0],
            )
            .joint(
                "rootx",
                JointKind::Slider,
                None,
                "torso",
                anchor,
                [1.0, 0.0, 0.0],
            )
            .joint(
                "rooty",
                JointKind::Hinge,
                None,
                "torso",
                anchor,
                [0.0, 1.0, 0.0],
            )
            .build()
            .unwrap();
        for (j, frame_axis) in model.joints.iter_mut().zip([1, 2, 3]) {
            j.shared_frame = Some(SharedFrame {
                compound: "root".into(),
                frame_axis,
            });
        }
        edit(&mut model);
        model
    }

    #[test]
    fn members_free_their_own_axis_of_one_frame_and_the_first_locks_the_rest() {
        let model = planar(|_| {});
        model.validate().unwrap();
        let kernel = kernel_joints(&model);
        for (j, k) in model.joints.iter().zip(&kernel) {
            assert_eq!(k.frame, kernel[0].frame);
            assert!(
                k.hinge,
                "the compound has a hinge: its rotations are a hinge's"
            );
            let axis = j.free_axes()[0] as usize;
            let unit = [Vec3::X, Vec3::Y, Vec3::Z][axis % 3];
            let along = k.frame * unit;
            let want = Vec3::from_array(j.axis);
            assert!(
                (along - want).length() < 1e-6,
                "{}: {along} vs {want}",
                j.name
            );
        }
        // Frame x is the hinge's axis, world y: translation along it and the rotations about
        // frame y and z are locked, once.
        assert_eq!(kernel[0].locked, [true, false, false, false, true, true]);
        assert_eq!(kernel[1].locked, [false; 6]);
        assert_eq!(kernel[2].locked, [false; 6]);
    }

    #[test]
    fn compounds_round_trip_through_toml_and_an_unknown_key_is_refused() {
        let model = planar(|_| {});
        let text = model.to_toml();
        assert!(text.contains("frame_axis = 3"), "{text}");
        assert_eq!(Model::from_toml_str(&text, None).unwrap(), model);
        let bad = text.replacen("frame_axis = 3", "frame_axis = 3\naxis_of = 1", 1);
        let e = Model::from_toml_str(&bad, None).unwrap_err().to_string();
        assert!(e.contains("axis_of"), "{e}");
        let bad = text.replacen("frame_axis = 3", "frame_axis = 4", 1);
        let e = Model::from_toml_str(&bad, None).unwrap_err().to_string();
        assert!(e.contains("frame_axis") && e.contains("line"), "{e}");
    }

    #[test]
    fn joints_outside_compounds_keep_their_kind_frame() {
        let model = ModelBuilder::new("hinge")
            .body("b", 1.0, [0.0, 0.0, 1.0])
            .joint("h", JointKind::Hinge, None, "b", [0.0; 3], [0.3, 0.4, 0.5])
            .build()
            .unwrap();
        let k = kernel_joints(&model)[0];
        let axis = Vec3::new(0.3, 0.4, 0.5).normalize();
        assert_eq!(k.frame, Quat::from_rotation_arc(Vec3::X, axis));
        assert_eq!(k.locked, JointKind::Hinge.locked_axes());
        assert_eq!(model.joints[0].free_axes(), &[3]);
    }

    type Edit = Box<dyn Fn(&mut Model)>;

    #[test]
    fn inconsistent_compounds_are_refused_naming_the_field() {
        let cases: [(&str, Edit, &str); 6] = [
            (
                "oblique slide",
                Box::new(|m| m.joints[1].axis = [1.0, 0.0, 0.3]),
                "perpendicular",
            ),
            (
                "two on one axis",
                Box::new(|m| m.joints[1].shared_frame.as_mut().unwrap().frame_axis = 1),
                "both free frame axis 1",
            ),
            (
                "hinge on a translation",
                Box::new(|m| m.joints[2].shared_frame.as_mut().unwrap().frame_axis = 0),
                "cannot free frame axis 0",
            ),
            (
                "other anchor",
                Box::new(|m| m.joints[2].anchor = [0.0, 0.0, 1.0]),
                "must have the anchor",
            ),
            (
                "left-handed",
                Box::new(|m| {
                    m.joints[2].kind = JointKind::Slider;
                    m.joints[2].shared_frame.as_mut().unwrap().frame_axis = 0;
                    m.joints[2].axis = [0.0, -1.0, 0.0];
                }),
                "left-handed",
            ),
            (
                "ball member",
                Box::new(|m| m.joints[0].kind = JointKind::Ball),
                "cannot free frame axis 1",
            ),
        ];
        for (what, edit, message) in cases {
            let model = planar(edit);
            let e = model.validate().expect_err(what);
            assert!(e.to_string().contains(message), "{what}: {e}");
            assert!(e.to_string().contains("joint"), "{what}: {e}");
        }
    }
}
