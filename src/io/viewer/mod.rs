//! A self-contained HTML trajectory viewer: [`write_html`] writes one file that plays a rollout
//! in 3D in any browser, with no network access (the data is embedded as JSON and every script
//! is inline).
//!
//! The page draws each body's shapes (spheres, capsules, boxes) at the recorded poses on a
//! ground grid, with shadows, and thin "bones" from a body's joint to its other joints and
//! shapes where a body has no box or capsule to show its extent (the quadruped's legs, the
//! double pendulum's links). Controls: play/pause (space), playback speed, a time slider,
//! looping, an orbiting camera (drag to orbit, shift- or right-drag to pan, wheel to zoom,
//! double-click to reset) that can follow the robots, and for batched rollouts a choice of
//! one instance or several side by side in a grid.
//!
//! Rendering uses a canvas 2D context with a software perspective projection and depth-sorted
//! primitives, so it works where WebGL does not (headless browsers without a GPU).
//!
//! File size: a frame costs about `instances x bodies x 7` numbers of up to 4 decimals
//! (~8 bytes each). [`ViewerOptions`] caps the frames (evenly subsampled, the first and last
//! always kept), the instances embedded (the first ones) and the embedded data size; the page
//! states what was left out.

use std::fmt::Write as _;

use std::path::Path;

use glam::{Quat, Vec3};

use crate::engine::sim::BodyState;
use crate::error::{Error, Result};
use crate::model::{JointKind, Model, ShapeKind};

/// The page template; `/*BACKDRIVE_DATA*/` is replaced by the JSON data.
const TEMPLATE: &str = include_str!("../../../assets/viewer/viewer.html");
const DATA_MARKER: &str = "/*BACKDRIVE_DATA*/";
const TITLE_MARKER: &str = "<!--BACKDRIVE_TITLE-->";

/// Instances a [`Trajectory::for_model`] keeps, and [`ViewerOptions::default`] embeds.
pub const DEFAULT_MAX_INSTANCES: usize = 16;
/// Frames [`ViewerOptions::default`] embeds.
pub const DEFAULT_MAX_FRAMES: usize = 3000;

/// Recorded body poses over time for a batch of instances (or the first few of a batch).
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    n_bodies: usize,
    total_instances: usize,
    kept_instances: usize,
    times: Vec<f64>,
    /// Per frame: `kept_instances x n_bodies` poses of 7 floats (position, `[x, y, z, w]`).
    poses: Vec<f32>,
}

impl Trajectory {
    /// An empty trajectory of a batch of `total_instances` instances of a model with `n_bodies`
    /// bodies that keeps the first `keep_instances` of them (at least one).
    pub fn new(n_bodies: usize, total_instances: usize, keep_instances: usize) -> Trajectory {
        Trajectory {
            n_bodies,
            total_instances,
            kept_instances: keep_instances.clamp(1, total_instances.max(1)),
            times: Vec::new(),
            poses: Vec::new(),
        }
    }

    /// An empty trajectory of `n_instances` instances of `model`, keeping the first
    /// [`DEFAULT_MAX_INSTANCES`].
    pub fn for_model(model: &Model, n_instances: usize) -> Trajectory {
        Trajectory::new(model.bodies.len(), n_instances, DEFAULT_MAX_INSTANCES)
    }

    /// Records the poses in `states` (instance-major, as [`crate::Simulator::body_states`]
    /// returns them: all instances, or only the kept ones) at model time `time`. Times must
    /// not decrease.
    pub fn push(&mut self, time: f64, states: &[BodyState]) -> Result<()> {
        let kept = self.kept_instances * self.n_bodies;
        if states.len() != self.total_instances * self.n_bodies && states.len() != kept {
            return Err(Error::InvalidInput(format!(
                "trajectory frame with {} body states: expected {} ({} instances x {} bodies)",
                states.len(),
                self.total_instances * self.n_bodies,
                self.total_instances,
                self.n_bodies
            )));
        }
        self.check_time(time)?;
        self.times.push(time);
        for s in &states[..kept] {
            self.poses.extend_from_slice(&s.position);
            self.poses.extend_from_slice(&s.orientation);
        }
        Ok(())
    }

    /// Records one frame of poses, `(position, orientation [x, y, z, w])` per body of each
    /// kept instance, instance-major.
    pub fn push_poses(&mut self, time: f64, poses: &[([f32; 3], [f32; 4])]) -> Result<()> {
        let kept = self.kept_instances * self.n_bodies;
        if poses.len() != kept {
            return Err(Error::InvalidInput(format!(
                "trajectory frame with {} poses: expected {kept} ({} instances x {} bodies)",
                poses.len(),
                self.kept_instances,
                self.n_bodies
            )));
        }
        self.check_time(time)?;
        self.times.push(time);
        for (p, q) in poses {
            self.poses.extend_from_slice(p);
            self.poses.extend_from_slice(q);
        }
        Ok(())
    }

    fn check_time(&self, time: f64) -> Result<()> {
        if !time.is_finite() || self.times.last().is_some_and(|&t| time < t) {
            return Err(Error::InvalidInput(format!(
                "trajectory time {time} after {}: times must be finite and must not decrease",
                self.times.last().copied().unwrap_or(f64::NAN)
            )));
        }
        Ok(())
    }

    /// Number of recorded frames.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether no frame was recorded.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Frame times.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Bodies per instance.
    pub fn n_bodies(&self) -> usize {
        self.n_bodies
    }

    /// Instances recorded (the first ones of the batch).
    pub fn kept_instances(&self) -> usize {
        self.kept_instances
    }

    /// Instances in the batch.
    pub fn total_instances(&self) -> usize {
        self.total_instances
    }

    /// Pose of `body` of kept instance `instance` in `frame`: position and `[x, y, z, w]`.
    pub fn pose(&self, frame: usize, instance: usize, body: usize) -> ([f32; 3], [f32; 4]) {
        let i = 7 * ((frame * self.kept_instances + instance) * self.n_bodies + body);
        let p = &self.poses[i..i + 7];
        ([p[0], p[1], p[2]], [p[3], p[4], p[5], p[6]])
    }
}

/// What [`write_html`] embeds.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewerOptions {
    /// Page title; the model's name when `None`.
    pub title: Option<String>,
    /// At most this many frames are embedded, evenly subsampled (first and last kept).
    pub max_frames: usize,
    /// At most this many instances (the first ones) are embedded.
    pub max_instances: usize,
    /// Decimals of positions and quaternions (4: 0.1 mm).
    pub decimals: usize,
    /// Fewer frames are embedded if the pose data would exceed about this many bytes.
    pub max_data_bytes: usize,
}

impl Default for ViewerOptions {
    fn default() -> Self {
        ViewerOptions {
            title: None,
            max_frames: DEFAULT_MAX_FRAMES,
            max_instances: DEFAULT_MAX_INSTANCES,
            decimals: 4,
            max_data_bytes: 16 << 20,
        }
    }
}

/// Writes the viewer page for `trajectory` of `model` to `path` (parent directories are
/// created; the file is written atomically by [`crate::io::files::write_atomic`]).
pub fn write_html(
    path: impl AsRef<Path>,
    model: &Model,
    trajectory: &Trajectory,
    options: &ViewerOptions,
) -> Result<()> {
    let html = render_html(model, trajectory, options)?;
    crate::io::files::write_atomic(path.as_ref(), html.as_bytes())
}

/// The viewer page for `trajectory` of `model`, as one HTML document.
pub fn render_html(
    model: &Model,
    trajectory: &Trajectory,
    options: &ViewerOptions,
) -> Result<String> {
    let data = data_json(model, trajectory, options)?;
    let title = options.title.clone().unwrap_or_else(|| model.name.clone());
    Ok(TEMPLATE
        .replacen(TITLE_MARKER, &html_escape(&title), 1)
        .replacen(DATA_MARKER, &data, 1))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A JSON string, safe inside a `<script>` element.
fn json_str(s: &str) -> String {
    serde_json::to_string(s)
        .expect("strings serialise")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
}

/// `v` with at most `decimals` decimals and no trailing zeros; `null` when not finite.
fn push_num(out: &mut String, v: f32, decimals: usize) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    let start = out.len();
    let _ = write!(out, "{v:.decimals$}");
    if out[start..].contains('.') {
        let trimmed = out[start..]
            .trim_end_matches('0')
            .trim_end_matches('.')
            .len();
        out.truncate(start + trimmed);
    }
    if &out[start..] == "-0" {
        out.truncate(start);
        out.push('0');
    }
}

fn push_vec(out: &mut String, v: &[f32], decimals: usize) {
    out.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_num(out, *x, decimals);
    }
    out.push(']');
}

/// Indices of `keep` of `n` frames, evenly spread, first and last included.
fn subsample(n: usize, keep: usize) -> Vec<usize> {
    if n <= keep {
        return (0..n).collect();
    }
    let keep = keep.max(2);
    let mut idx: Vec<usize> = (0..keep)
        .map(|j| ((j as f64) * (n - 1) as f64 / (keep - 1) as f64).round() as usize)
        .collect();
    idx.dedup();
    idx
}

/// Depth of each body in the joint tree (roots and free bodies 0).
fn body_depths(model: &Model) -> Vec<usize> {
    let mut depth = vec![0usize; model.bodies.len()];
    // Relax: a chain of n bodies settles within n passes.
    for _ in 0..model.bodies.len() {
        let mut changed = false;
        for j in &model.joints {
            let (Some(c), Some(p)) = (
                model.body_index(&j.child),
                j.parent.as_deref().and_then(|p| model.body_index(p)),
            ) else {
                continue;
            };
            if depth[c] < depth[p] + 1 && depth[p] < model.bodies.len() {
                depth[c] = depth[p] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

/// The model part of the page data: shapes, bones and colours of each body.
fn model_json(model: &Model, out: &mut String) {
    let d = 5;
    let local = |b: usize, world: [f32; 3]| -> [f32; 3] {
        let body = &model.bodies[b];
        let [x, y, z, w] = body.orientation;
        let q = Quat::from_xyzw(x, y, z, w).normalize();
        (q.conjugate() * (Vec3::from(world) - Vec3::from(body.position))).to_array()
    };
    let depths = body_depths(model);
    out.push_str("\"bodies\":[");
    for (b, body) in model.bodies.iter().enumerate() {
        if b > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"name\":{},\"depth\":{},\"shapes\":[",
            json_str(&body.name),
            depths[b]
        );
        let mut radius = 0f32;
        let mut extended = false;
        let mut points: Vec<[f32; 3]> = Vec::new();
        for (s, shape) in body.shapes.iter().enumerate() {
            if s > 0 {
                out.push(',');
            }
            let off = Vec3::from(shape.offset).length();
            match &shape.kind {
                ShapeKind::Sphere { radius: r } => {
                    let _ = write!(out, "{{\"type\":\"sphere\",\"r\":");
                    push_num(out, *r, d);
                    radius = radius.max(off + r);
                    points.push(shape.offset);
                }
                ShapeKind::Capsule {
                    radius: r,
                    half_length,
                } => {
                    let _ = write!(out, "{{\"type\":\"capsule\",\"r\":");
                    push_num(out, *r, d);
                    out.push_str(",\"hl\":");
                    push_num(out, *half_length, d);
                    radius = radius.max(off + r + half_length);
                    extended = true;
                }
                ShapeKind::Box { half_extents } => {
                    out.push_str("{\"type\":\"box\",\"he\":");
                    push_vec(out, half_extents, d);
                    radius = radius.max(off + Vec3::from(*half_extents).length());
                    extended = true;
                }
            }
            out.push_str(",\"off\":");
            push_vec(out, &shape.offset, d);
            out.push_str(",\"rot\":");
            push_vec(out, &shape.rotation, d);
            out.push('}');
        }
        out.push(']');

        // Bones from the joint that holds this body to its other joints and its spheres, for
        // bodies without a box or capsule (which would otherwise show as loose spheres).
        let proximal = model
            .joints
            .iter()
            .find(|j| j.child == body.name && j.kind != JointKind::Fixed)
            .map(|j| local(b, j.anchor));
        let mut bones: Vec<[f32; 3]> = Vec::new();
        if !extended && let Some(p) = proximal {
            for j in model
                .joints
                .iter()
                .filter(|j| j.parent.as_deref() == Some(&body.name))
            {
                points.push(local(b, j.anchor));
            }
            if body.shapes.is_empty() {
                points.push([0.0; 3]);
            }
            for q in points {
                if (Vec3::from(q) - Vec3::from(p)).length() > 1e-4 {
                    radius = radius.max(Vec3::from(q).length());
                    bones.push(p);
                    bones.push(q);
                }
            }
            radius = radius.max(Vec3::from(p).length());
        }
        out.push_str(",\"bones\":[");
        for (i, v) in bones.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_vec(out, v, d);
        }
        out.push_str("],\"radius\":");
        push_num(out, radius, d);
        out.push('}');
    }
    // World pivots: anchors of hinges and ball joints to the world.
    out.push_str("],\"pivots\":[");
    let mut first = true;
    for j in &model.joints {
        if j.parent.is_none() && matches!(j.kind, JointKind::Hinge | JointKind::Ball) {
            if !first {
                out.push(',');
            }
            first = false;
            push_vec(out, &j.anchor, d);
        }
    }
    out.push(']');
    let fixed_base = model.joints.iter().any(|j| j.parent.is_none());
    let _ = write!(out, ",\"fixed_base\":{fixed_base}");
}

/// Instances of `trajectory` that [`render_html`] embeds with `options`.
pub fn embedded_instances(trajectory: &Trajectory, options: &ViewerOptions) -> usize {
    trajectory.kept_instances.min(options.max_instances.max(1))
}

/// Frames of `trajectory` that [`render_html`] embeds with `options`.
pub fn embedded_frames(trajectory: &Trajectory, options: &ViewerOptions) -> usize {
    trajectory
        .len()
        .min(max_embedded_frames(trajectory, options))
}

/// At most this many frames fit `options`: `max_frames` and the data budget (each number
/// takes at most `decimals + 5` characters or so).
fn max_embedded_frames(tr: &Trajectory, options: &ViewerOptions) -> usize {
    let per_frame =
        embedded_instances(tr, options) * tr.n_bodies * 7 * (options.decimals.min(7) + 5) + 16;
    options
        .max_frames
        .min(options.max_data_bytes / per_frame)
        .max(2)
}

/// The page data: model, frames and what was left out.
fn data_json(model: &Model, tr: &Trajectory, options: &ViewerOptions) -> Result<String> {
    if tr.n_bodies != model.bodies.len() {
        return Err(Error::InvalidInput(format!(
            "trajectory of {} bodies for model '{}' of {} bodies",
            tr.n_bodies,
            model.name,
            model.bodies.len()
        )));
    }
    if tr.is_empty() {
        return Err(Error::InvalidInput(
            "empty trajectory: no frame to show".into(),
        ));
    }
    let decimals = options.decimals.min(7);
    let instances = embedded_instances(tr, options);
    let frames = subsample(tr.len(), max_embedded_frames(tr, options));
    let per_frame = instances * tr.n_bodies * 7 * (decimals + 5) + 16;

    let mut out = String::with_capacity(frames.len() * per_frame + 4096);
    out.push('{');
    let title = options.title.clone().unwrap_or_else(|| model.name.clone());
    let _ = write!(
        out,
        "\"version\":1,\"title\":{},\"model\":{},\"dt\":{},",
        json_str(&title),
        json_str(&model.name),
        model.settings.dt
    );
    model_json(model, &mut out);
    let _ = write!(
        out,
        ",\"instances\":{instances},\"total_instances\":{},\"recorded_instances\":{},\
         \"total_frames\":{},",
        tr.total_instances,
        tr.kept_instances,
        tr.len()
    );
    out.push_str("\"times\":[");
    for (k, &f) in frames.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", (tr.times[f] * 1e6).round() / 1e6);
    }
    out.push_str("],\"frames\":[");
    for (k, &f) in frames.iter().enumerate() {
        if k > 0 {
            out.push_str(",\n");
        }
        out.push('[');
        let mut first = true;
        for i in 0..instances {
            for b in 0..tr.n_bodies {
                let (p, q) = tr.pose(f, i, b);
                for v in p.iter().chain(q.iter()) {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    push_num(&mut out, *v, decimals);
                }
            }
        }
        out.push(']');
    }
    out.push_str("]}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: f32, d: usize) -> String {
        let mut s = String::new();
        push_num(&mut s, v, d);
        s
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(0.231, 4), "0.231");
        assert_eq!(num(1.0, 4), "1");
        assert_eq!(num(-0.00001, 4), "0");
        assert_eq!(num(-1.23456, 4), "-1.2346");
        assert_eq!(num(f32::NAN, 4), "null");
        assert_eq!(num(120.0, 0), "120");
    }

    #[test]
    fn subsampling_keeps_ends() {
        assert_eq!(subsample(5, 10), vec![0, 1, 2, 3, 4]);
        let s = subsample(1001, 11);
        assert_eq!(s.len(), 11);
        assert_eq!(s[0], 0);
        assert_eq!(*s.last().unwrap(), 1000);
        assert_eq!(s[1], 100);
    }

    #[test]
    fn json_strings_cannot_close_the_script() {
        assert_eq!(json_str("a</script>"), "\"a\\u003c/script\\u003e\"");
    }

    #[test]
    fn page_embeds_parseable_data() {
        for name in crate::io::models::names() {
            let model = crate::io::models::builtin(name).unwrap();
            let mut tr = Trajectory::new(model.bodies.len(), 3, 2);
            let states: Vec<BodyState> = (0..3)
                .flat_map(|_| {
                    model.bodies.iter().map(|b| BodyState {
                        position: b.position,
                        orientation: b.orientation,
                        ..BodyState::default()
                    })
                })
                .collect();
            tr.push(0.0, &states).unwrap();
            tr.push(0.01, &states).unwrap();
            assert!(tr.push(0.005, &states).is_err());
            assert!(tr.push(0.02, &states[..1]).is_err());
            let html = render_html(&model, &tr, &ViewerOptions::default()).unwrap();
            assert!(!html.contains(DATA_MARKER), "{name}");
            let start = html.find("id=\"bd-data\"").unwrap();
            let start = start + html[start..].find('>').unwrap() + 1;
            let end = start + html[start..].find("</script>").unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&html[start..end]).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(v["frames"].as_array().unwrap().len(), 2, "{name}");
            assert_eq!(
                v["frames"][0].as_array().unwrap().len(),
                2 * model.bodies.len() * 7,
                "{name}"
            );
            assert_eq!(v["bodies"].as_array().unwrap().len(), model.bodies.len());
        }
    }
}
