//! The task file (`tasks/*.toml`, documented in `tasks/README.md`): reading a [`Task`] with
//! errors that name file, line and field.
//!
//! The file is deserialised into plain structures first (serde reports unknown keys and wrong
//! types with the span of the offending value), then each section is checked against the
//! model it names, so that a misspelt body or joint is reported at the line that names it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, FieldPath, ModelError, Result};
use crate::grad::loss::Loss;
use crate::learn::algorithm::Algorithm;
use crate::learn::optim::{Method, OptimizerConfig, Schedule};
use crate::learn::policy::{Activation, PolicySpec, Sensor};
use crate::learn::tasks::{Randomization, Task, Termination};
use crate::model::{Model, line_of, locate, path_at};

mod terms;

use terms::loss_term;

/// Model files that shipped task files name by a path relative to `tasks/`: a shipped task has
/// no directory to resolve against, so the text is compiled in.
const EMBEDDED_MODEL_FILES: &[(&str, &str)] = &[(
    "../tests/fixtures/mjcf/gymnasium_ant.xml",
    include_str!("../../../tests/fixtures/mjcf/gymnasium_ant.xml"),
)];

/// Where a task file's relative model paths are resolved.
#[derive(Clone, Debug)]
pub enum ModelBase {
    /// Against this directory (the task file's).
    Dir(PathBuf),
    /// A shipped task: only shipped model names and the compiled-in model files.
    Embedded,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    name: String,
    description: String,
    model: ModelSection,
    horizon: u32,
    instances: usize,
    iterations: u32,
    #[serde(default = "one")]
    gradient_decay: f32,
    truncation: Option<u32>,
    #[serde(default)]
    sensor: Vec<FileSensor>,
    policy: PolicySection,
    #[serde(default)]
    optimizer: OptimizerSection,
    #[serde(default)]
    randomization: Randomization,
    #[serde(default)]
    loss: Vec<TermSection>,
    #[serde(default)]
    reward: Vec<TermSection>,
    #[serde(default)]
    algorithm: Algorithm,
    termination: Option<TerminationSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TerminationSection {
    body: String,
    height: [f32; 2],
    min_upright: Option<f32>,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    name: Option<String>,
    file: Option<String>,
    #[serde(default)]
    ignore_unsupported: bool,
    #[serde(default)]
    body: Vec<BodyOverride>,
    #[serde(default)]
    joint: Vec<JointOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyOverride {
    name: String,
    position: Option<[f32; 3]>,
    linear_velocity: Option<[f32; 3]>,
    angular_velocity: Option<[f32; 3]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JointOverride {
    name: String,
    #[serde(default)]
    remove_limits: bool,
}

/// A sensor as the file names it: [`Sensor`]'s kinds plus two that expand to one sensor per
/// actuator, in the model's actuator order.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum FileSensor {
    JointAngle {
        joint: String,
        #[serde(default)]
        axis: u32,
    },
    JointSpeed {
        joint: String,
        #[serde(default)]
        axis: u32,
    },
    BodyPosition {
        body: String,
    },
    BodyVelocity {
        body: String,
    },
    BodyOrientation {
        body: String,
    },
    BodyAngularVelocity {
        body: String,
    },
    Clock {
        frequency: f32,
    },
    Constant {
        value: [f32; 3],
    },
    ContactFlag {
        point: u32,
        threshold: f32,
    },
    ActuatedJointAngles,
    ActuatedJointSpeeds,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySection {
    hidden: Vec<usize>,
    activation: Activation,
    #[serde(default)]
    skip: bool,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum MethodName {
    Adam,
    Sgd,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum ScheduleName {
    Constant,
    Cosine,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OptimizerSection {
    method: MethodName,
    learning_rate: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    momentum: f32,
    max_norm: f32,
    schedule: ScheduleName,
    final_fraction: f32,
}

impl Default for OptimizerSection {
    fn default() -> Self {
        OptimizerSection {
            method: MethodName::Adam,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            momentum: 0.9,
            max_norm: 1.0,
            schedule: ScheduleName::Constant,
            final_fraction: 0.1,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum TermKind {
    PositionError,
    VelocityError,
    AngularVelocityError,
    OrientationError,
    JointError,
    Position,
    Velocity,
    ForwardVelocity,
    HealthyHeight,
    ControlCost,
}

#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum WhenName {
    #[default]
    EveryStep,
    Final,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TermSection {
    #[serde(rename = "type")]
    kind: TermKind,
    body: Option<String>,
    joint: Option<String>,
    target: Option<Vec<f32>>,
    mask: Option<[f32; 3]>,
    direction: Option<[f32; 3]>,
    axis: Option<u32>,
    range: Option<[f32; 2]>,
    #[serde(default = "one")]
    weight: f32,
    #[serde(default)]
    when: WhenName,
    #[serde(default)]
    average: bool,
}

/// Builds errors located in one file's text.
struct Locator<'a> {
    text: &'a str,
    file: Option<&'a Path>,
}

impl Locator<'_> {
    fn error(&self, field: FieldPath, message: impl Into<String>) -> Error {
        task_error(ModelError {
            file: self.file.map(Path::to_path_buf),
            line: locate(self.text, &field),
            field,
            message: message.into(),
        })
    }
}

/// A task file's error: located as a model file's (`file:line: field: problem`), but not
/// reported as an invalid model.
fn task_error(located: ModelError) -> Error {
    Error::InvalidInput(located.to_string())
}

/// An error from loading the model, inside a task file's error: without the "invalid input"
/// prefix that the outer error already carries.
fn inner_message(e: Error) -> String {
    match e {
        Error::InvalidInput(message) => message,
        other => other.to_string(),
    }
}

/// Parses a task from task-file text. `file` names the file in messages; `base` resolves the
/// model's file.
pub fn parse(text: &str, file: Option<&Path>, base: &ModelBase) -> Result<Task> {
    let raw: TaskFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let field = e.span().map(|s| path_at(text, s.start)).unwrap_or_default();
        let mut message = e.message().trim().to_string();
        if text_has_key(text, "body") {
            message.push_str(
                " (this looks like a model file: a task file names its model in [model])",
            );
        }
        task_error(ModelError {
            file: file.map(Path::to_path_buf),
            line,
            field,
            message,
        })
    })?;
    let at = Locator { text, file };
    let model = resolve_model(&raw.model, &at, base)?;
    if raw.horizon == 0 {
        return Err(at.error(FieldPath::key("horizon"), "must be at least 1 step"));
    }
    if raw.instances == 0 {
        return Err(at.error(FieldPath::key("instances"), "must be at least 1"));
    }
    if raw.truncation == Some(0) {
        return Err(at.error(FieldPath::key("truncation"), "must be at least 1 step"));
    }
    if !(raw.gradient_decay.is_finite() && raw.gradient_decay > 0.0) {
        return Err(at.error(
            FieldPath::key("gradient_decay"),
            "must be a positive number",
        ));
    }
    let sensors = sensors(&raw.sensor, &model, &at)?;
    if sensors.is_empty() {
        return Err(at.error(
            FieldPath::key("sensor"),
            "a task needs at least one sensor (the policy's observation)",
        ));
    }
    let mut loss = Loss::new();
    for (section, sign) in [("loss", false), ("reward", true)] {
        let terms = if sign { &raw.reward } else { &raw.loss };
        for (k, term) in terms.iter().enumerate() {
            loss.terms
                .push(loss_term(term, section, k, sign, raw.horizon, &model, &at)?);
        }
    }
    let optimizer = optimizer(&raw.optimizer, raw.iterations, &at)?;
    check_randomization(&raw.randomization, &at)?;
    if let Algorithm::Shac(settings) = &raw.algorithm {
        check_shac(settings, &at)?;
    }
    if raw.randomization.moves_initial_state() && !matches!(raw.algorithm, Algorithm::Shac(_)) {
        // Only the actor-critic draws a start per robot and per reset so far.
        let key = if raw.randomization.joint_angle.is_some() {
            "randomization.joint_angle"
        } else {
            "randomization.joint_speed"
        };
        return Err(at.error(
            FieldPath::key(key),
            "only the actor-critic (algorithm = \"shac\") randomises the initial state so far",
        ));
    }
    let termination = raw
        .termination
        .as_ref()
        .map(|t| termination(t, &raw.algorithm, &model, &at))
        .transpose()?;
    Ok(Task {
        name: raw.name,
        description: raw.description,
        model,
        policy: PolicySpec {
            sensors,
            hidden: raw.policy.hidden,
            activation: raw.policy.activation,
            skip: raw.policy.skip,
        },
        loss,
        horizon: raw.horizon,
        instances: raw.instances,
        iterations: raw.iterations,
        optimizer,
        gradient_decay: raw.gradient_decay,
        truncation: raw.truncation,
        randomization: raw.randomization,
        algorithm: raw.algorithm,
        termination,
    })
}

fn termination(
    t: &TerminationSection,
    algorithm: &Algorithm,
    model: &Model,
    at: &Locator<'_>,
) -> Result<Termination> {
    let field = |key: &str| FieldPath::key(&format!("termination.{key}"));
    let body = model
        .body_index(&t.body)
        .ok_or_else(|| at.error(field("body"), format!("no body '{}'", t.body)))?;
    let [lo, hi] = t.height;
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(at.error(
            field("height"),
            "must be [low, high] with finite low < high (m)",
        ));
    }
    if let Some(m) = t.min_upright
        && !(-1.0..=1.0).contains(&m)
    {
        return Err(at.error(
            field("min_upright"),
            "must be a cosine in [-1, 1] (1: upright)",
        ));
    }
    if !matches!(algorithm, Algorithm::Shac(_)) {
        // Backpropagation through whole episodes has no reset between windows yet.
        return Err(at.error(
            FieldPath::key("termination"),
            "only the actor-critic (algorithm = \"shac\") handles terminations so far",
        ));
    }
    Ok(Termination {
        body,
        height: [lo, hi],
        min_upright: t.min_upright,
    })
}

/// Whether the text has a top-level key or array of tables named `key` (a model file's
/// `[[body]]`), to tell a model file given as a task apart.
fn text_has_key(text: &str, key: &str) -> bool {
    toml::de::DeTable::parse(text).is_ok_and(|t| t.get_ref().contains_key(key))
}

fn resolve_model(section: &ModelSection, at: &Locator<'_>, base: &ModelBase) -> Result<Model> {
    let mut model = match (&section.name, &section.file) {
        (Some(name), None) => crate::io::models::builtin(name)
            .map_err(|e| at.error(FieldPath::key("model.name"), inner_message(e)))?,
        (None, Some(file)) => load_model_file(file, section.ignore_unsupported, base)
            .map_err(|e| at.error(FieldPath::key("model.file"), inner_message(e)))?,
        _ => {
            return Err(at.error(
                FieldPath::key("model"),
                "give exactly one of name (a shipped model) and file (a TOML or MJCF path \
                 relative to the task file)",
            ));
        }
    };
    for (k, o) in section.body.iter().enumerate() {
        let b = model.body_index(&o.name).ok_or_else(|| {
            at.error(
                model_item("body", k, "name"),
                format!("no body '{}'", o.name),
            )
        })?;
        let body = &mut model.bodies[b];
        if let Some(p) = o.position {
            body.position = p;
        }
        if let Some(v) = o.linear_velocity {
            body.linear_velocity = v;
        }
        if let Some(w) = o.angular_velocity {
            body.angular_velocity = w;
        }
    }
    for (k, o) in section.joint.iter().enumerate() {
        let j = model.joint_index(&o.name).ok_or_else(|| {
            at.error(
                model_item("joint", k, "name"),
                format!("no joint '{}'", o.name),
            )
        })?;
        if o.remove_limits {
            model.joints[j].limits = None;
        }
    }
    model
        .validate()
        .map_err(|e| at.error(FieldPath::key("model"), inner_message(e)))?;
    Ok(model)
}

/// `model.TABLE[k].key` (the `model` table is not an array, so [`FieldPath::item`] does not fit).
fn model_item(table: &str, k: usize, key: &str) -> FieldPath {
    use crate::error::PathSegment::{Index, Key};
    FieldPath(vec![
        Key("model".into()),
        Key(table.into()),
        Index(k),
        Key(key.into()),
    ])
}

fn load_model_file(file: &str, ignore_unsupported: bool, base: &ModelBase) -> Result<Model> {
    let is_xml = file.to_ascii_lowercase().ends_with(".xml");
    let options = crate::io::mjcf::MjcfOptions {
        ignore_unsupported,
        ..Default::default()
    };
    match base {
        ModelBase::Dir(dir) => {
            let path = dir.join(file);
            if is_xml {
                Ok(crate::io::mjcf::load_mjcf_with(&path, &options)?.model)
            } else {
                Model::from_toml_file(&path)
            }
        }
        ModelBase::Embedded => {
            let (_, text) = EMBEDDED_MODEL_FILES
                .iter()
                .find(|(name, _)| *name == file)
                .ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "'{file}' is not a model file compiled into backdrive"
                    ))
                })?;
            let shown = Path::new("tasks").join(file);
            if is_xml {
                Ok(crate::io::mjcf::from_str(text, Some(&shown), &options)?.model)
            } else {
                Model::from_toml_str(text, Some(&shown))
            }
        }
    }
}

fn sensors(list: &[FileSensor], model: &Model, at: &Locator<'_>) -> Result<Vec<Sensor>> {
    let mut out = Vec::new();
    for (k, s) in list.iter().enumerate() {
        let field = |key: &str| FieldPath::item("sensor", k, key);
        let joint = |name: &String| {
            model
                .joint_index(name)
                .map(|_| name.clone())
                .ok_or_else(|| at.error(field("joint"), format!("no joint '{name}'")))
        };
        let body = |name: &String| {
            model
                .body_index(name)
                .map(|_| name.clone())
                .ok_or_else(|| at.error(field("body"), format!("no body '{name}'")))
        };
        match s {
            FileSensor::JointAngle { joint: j, axis } => out.push(Sensor::JointAngle {
                joint: joint(j)?,
                axis: *axis,
            }),
            FileSensor::JointSpeed { joint: j, axis } => out.push(Sensor::JointSpeed {
                joint: joint(j)?,
                axis: *axis,
            }),
            FileSensor::BodyPosition { body: b } => {
                out.push(Sensor::BodyPosition { body: body(b)? })
            }
            FileSensor::BodyVelocity { body: b } => {
                out.push(Sensor::BodyVelocity { body: body(b)? })
            }
            FileSensor::BodyOrientation { body: b } => {
                out.push(Sensor::BodyOrientation { body: body(b)? })
            }
            FileSensor::BodyAngularVelocity { body: b } => {
                out.push(Sensor::BodyAngularVelocity { body: body(b)? })
            }
            FileSensor::Clock { frequency } => {
                if !frequency.is_finite() {
                    return Err(at.error(field("frequency"), "must be a finite number"));
                }
                out.push(Sensor::Clock {
                    frequency: *frequency,
                })
            }
            FileSensor::Constant { value } => out.push(Sensor::Constant { value: *value }),
            FileSensor::ContactFlag { point, threshold } => out.push(Sensor::ContactFlag {
                point: *point,
                threshold: *threshold,
            }),
            FileSensor::ActuatedJointAngles => {
                out.extend(model.actuators.iter().map(|a| Sensor::JointAngle {
                    joint: a.joint.clone(),
                    axis: 0,
                }))
            }
            FileSensor::ActuatedJointSpeeds => {
                out.extend(model.actuators.iter().map(|a| Sensor::JointSpeed {
                    joint: a.joint.clone(),
                    axis: 0,
                }))
            }
        }
    }
    Ok(out)
}

fn optimizer(o: &OptimizerSection, iterations: u32, at: &Locator<'_>) -> Result<OptimizerConfig> {
    let field = |key: &str| FieldPath::key(&format!("optimizer.{key}"));
    if !(o.learning_rate.is_finite() && o.learning_rate > 0.0) {
        return Err(at.error(field("learning_rate"), "must be a positive number"));
    }
    if !(o.max_norm.is_finite() && o.max_norm >= 0.0) {
        return Err(at.error(
            field("max_norm"),
            "must be a positive number, or 0 for no clipping",
        ));
    }
    Ok(OptimizerConfig {
        method: match o.method {
            MethodName::Adam => Method::Adam {
                beta1: o.beta1,
                beta2: o.beta2,
                epsilon: o.epsilon,
            },
            MethodName::Sgd => Method::Sgd {
                momentum: o.momentum,
            },
        },
        learning_rate: o.learning_rate,
        schedule: match o.schedule {
            ScheduleName::Constant => Schedule::Constant,
            ScheduleName::Cosine => Schedule::Cosine {
                iterations,
                final_fraction: o.final_fraction,
            },
        },
        max_norm: (o.max_norm > 0.0).then_some(o.max_norm),
    })
}

/// The actor-critic's numeric settings, checked where the file names them (the trainer checks
/// them again for tasks built in code).
fn check_shac(s: &crate::learn::algorithm::ShacSettings, at: &Locator<'_>) -> Result<()> {
    let field = |key: &str| FieldPath::key(&format!("algorithm.{key}"));
    if !(s.action_scale.is_finite() && s.action_scale > 0.0) {
        return Err(at.error(field("action_scale"), "must be a positive number"));
    }
    if !(s.action_noise.is_finite() && s.action_noise >= 0.0) {
        return Err(at.error(field("action_noise"), "must be a number >= 0"));
    }
    if let Some(v) = s.action_noise_final
        && !(v.is_finite() && v >= 0.0)
    {
        return Err(at.error(field("action_noise_final"), "must be a number >= 0"));
    }
    if s.critic_minibatches == 0 {
        return Err(at.error(field("critic_minibatches"), "must be at least 1"));
    }
    if s.critic_hidden.contains(&0) {
        return Err(at.error(field("critic_hidden"), "layer widths must be positive"));
    }
    Ok(())
}

fn check_randomization(r: &Randomization, at: &Locator<'_>) -> Result<()> {
    let field = |key: &str| FieldPath::key(&format!("randomization.{key}"));
    if !(r.mass.is_finite() && (0.0..1.0).contains(&r.mass)) {
        return Err(at.error(field("mass"), "must be in [0, 1)"));
    }
    if let Some((lo, hi)) = r.friction
        && !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi)
    {
        return Err(at.error(
            field("friction"),
            "must be [low, high] with 0 <= low <= high",
        ));
    }
    if let Some((lo, hi)) = r.shift
        && !(0..3).all(|k| lo[k].is_finite() && hi[k].is_finite() && lo[k] <= hi[k])
    {
        return Err(at.error(
            field("shift"),
            "must be [[low x, y, z], [high x, y, z]] with low <= high",
        ));
    }
    for (key, range) in [
        ("joint_angle", r.joint_angle),
        ("joint_speed", r.joint_speed),
    ] {
        if let Some((lo, hi)) = range
            && !(lo.is_finite() && hi.is_finite() && lo <= hi)
        {
            return Err(at.error(field(key), "must be [low, high] with finite low <= high"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grad::loss::Quantity;

    const SMALL: &str = r#"name = "small"
description = "a test task"
horizon = 10
instances = 2
iterations = 3

[model]
name = "cartpole"

[[sensor]]
type = "body_position"
body = "cart"

[policy]
hidden = [4]
activation = "tanh"

[[reward]]
type = "velocity"
body = "cart"
direction = [1.0, 0.0, 0.0]
average = true

[[reward]]
type = "healthy_height"
body = "pole"
range = [1.0, 2.0]
weight = 2.0
"#;

    fn parse_text(text: &str) -> Result<Task> {
        parse(
            text,
            Some(Path::new("dir/task.toml")),
            &ModelBase::Dir(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        )
    }

    #[test]
    fn a_reward_is_a_loss_of_the_opposite_sign_and_average_divides_by_the_horizon() {
        let task = parse_text(SMALL).unwrap();
        assert_eq!(task.algorithm, Algorithm::Bptt);
        assert_eq!(
            task.loss.terms[0].quantity,
            Quantity::Velocity {
                direction: [-0.1, 0.0, 0.0]
            }
        );
        assert_eq!(task.loss.terms[0].weight, 1.0);
        assert_eq!(
            task.loss.terms[1].quantity,
            Quantity::HealthyHeight {
                min_height: 1.0,
                max_height: 2.0
            }
        );
        assert_eq!(task.loss.terms[1].weight, -2.0);
        assert_eq!(task.optimizer, OptimizerConfig::adam(1e-3));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases = [
            (
                SMALL.replace("body = \"cart\"\n\n[policy]", "body = \"kart\"\n\n[policy]"),
                "dir/task.toml:12: sensor[0].body: no body 'kart'",
            ),
            (
                SMALL.replace("range = [1.0, 2.0]", "range = [2.0, 1.0]"),
                "dir/task.toml:27: reward[1].range: must be [min, max]",
            ),
            (
                SMALL.replace("average = true", "average = true\nmask = [1.0, 0.0, 0.0]"),
                "dir/task.toml:23: reward[0].mask: not used",
            ),
            (
                SMALL.replace("hidden = [4]", "hidden = [4]\ndropout = 0.5"),
                "dir/task.toml:16: policy.dropout: unknown field",
            ),
            (
                SMALL.replace("horizon = 10", "horizon = \"long\""),
                "dir/task.toml:3: horizon: invalid type",
            ),
            (
                SMALL.replace(
                    "name = \"cartpole\"",
                    "name = \"cartpole\"\nfile = \"models/arm.toml\"",
                ),
                "dir/task.toml:7: model: give exactly one",
            ),
            (
                SMALL.replace("name = \"cartpole\"", "name = \"kartpole\""),
                "dir/task.toml:8: model.name: unknown model 'kartpole'",
            ),
        ];
        for (text, expected) in cases {
            let message = parse_text(&text).unwrap_err().to_string();
            assert!(
                message.contains(expected),
                "expected '{expected}', got '{message}'"
            );
        }
        // serde reads an internally tagged enum through a buffer without spans, so a bad
        // setting of [algorithm] is placed on the table's lines (30 to 32), not always its own.
        let text = format!("{SMALL}\n[algorithm]\nalgorithm = \"shac\"\nwindow = \"x\"\n");
        let message = parse_text(&text).unwrap_err().to_string();
        let located = message
            .split("dir/task.toml:")
            .nth(1)
            .and_then(|rest| rest.split_once(": "))
            .and_then(|(line, rest)| Some((line.parse::<usize>().ok()?, rest)));
        let Some((line, rest)) = located else {
            panic!("no line in '{message}'")
        };
        assert!((30..=32).contains(&line), "{message}");
        assert!(rest.starts_with("algorithm"), "{message}");
    }

    #[test]
    fn bad_actor_critic_settings_name_file_line_and_field() {
        for (setting, field) in [
            ("action_noise = -0.5", "algorithm.action_noise"),
            ("action_noise_final = -1.0", "algorithm.action_noise_final"),
            ("action_scale = 0.0", "algorithm.action_scale"),
            ("critic_minibatches = 0", "algorithm.critic_minibatches"),
            ("critic_hidden = [8, 0]", "algorithm.critic_hidden"),
        ] {
            let text = format!("{SMALL}\n[algorithm]\nalgorithm = \"shac\"\n{setting}\n");
            let message = parse_text(&text).unwrap_err().to_string();
            let line = message
                .split("dir/task.toml:")
                .nth(1)
                .and_then(|rest| rest.split_once(": "))
                .and_then(|(line, _)| line.parse::<usize>().ok());
            assert!(line.is_some(), "no line in '{message}'");
            assert!(message.contains(field), "{setting}: '{message}'");
        }
    }

    #[test]
    fn every_term_type_reports_its_own_errors() {
        let cases = [
            (
                "type = \"position_error\"\nbody = \"cart\"",
                "target: missing: this term needs a target",
            ),
            (
                "type = \"velocity_error\"\nbody = \"cart\"\ntarget = [1.0, 2.0]",
                "target: expected 3 numbers, found 2",
            ),
            (
                "type = \"angular_velocity_error\"\nbody = \"kart\"",
                "body: no body 'kart'",
            ),
            // The quaternion is checked before the body.
            (
                "type = \"orientation_error\"\ntarget = [0.0, 1.0]",
                "target: expected a quaternion [x, y, z, w], found 2 numbers",
            ),
            (
                "type = \"orientation_error\"",
                "type: this term needs a body",
            ),
            (
                "type = \"orientation_error\"\nbody = \"pole\"\nmask = [1.0, 1.0, 0.0]",
                "mask: not used",
            ),
            ("type = \"joint_error\"", "type: this term needs a joint"),
            (
                "type = \"joint_error\"\njoint = \"elbow\"",
                "joint: no joint 'elbow'",
            ),
            (
                "type = \"joint_error\"\njoint = \"hinge\"\naxis = 6",
                "axis: 6 is not an axis 0..6",
            ),
            (
                "type = \"joint_error\"\njoint = \"hinge\"\ntarget = [0.1, 0.2]",
                "target: expected [coordinate], found 2 numbers",
            ),
            (
                "type = \"joint_error\"\njoint = \"hinge\"\nbody = \"pole\"",
                "body: not used",
            ),
            (
                "type = \"position\"\nbody = \"cart\"",
                "type: this term needs a direction",
            ),
            (
                "type = \"position\"\nbody = \"cart\"\ndirection = [1.0, 0.0, 0.0]\ntarget = [1.0, 0.0, 0.0]",
                "target: not used",
            ),
            (
                "type = \"velocity\"\nbody = \"cart\"",
                "type: this term needs a direction",
            ),
            (
                "type = \"forward_velocity\"\nbody = \"kart\"",
                "body: no body 'kart'",
            ),
            (
                "type = \"healthy_height\"\nbody = \"pole\"",
                "type: this term needs a range [min, max]",
            ),
            (
                "type = \"healthy_height\"\nbody = \"pole\"\nrange = [0.5, 1.0]\ndirection = [1.0, 0.0, 0.0]",
                "direction: not used",
            ),
            (
                "type = \"control_cost\"\nweight = nan",
                "weight: must be a finite number",
            ),
            ("type = \"control_cost\"\naxis = 1", "axis: not used"),
            (
                "type = \"control_cost\"\nrange = [0.0, 1.0]",
                "range: not used",
            ),
            (
                "type = \"velocity_error\"\nbody = \"cart\"\njoint = \"rail\"",
                "joint: not used",
            ),
        ];
        for (entry, expected) in cases {
            let text = format!("{SMALL}\n[[loss]]\n{entry}\n");
            let message = parse_text(&text).unwrap_err().to_string();
            let expected = format!("loss[0].{expected}");
            assert!(
                message.contains(&expected),
                "{entry}: expected '{expected}', got '{message}'"
            );
        }
        let text = format!(
            "{SMALL}\n[[loss]]\ntype = \"joint_error\"\njoint = \"hinge\"\naxis = 3\nweight = 2.0\naverage = true\n"
        );
        let term = &parse_text(&text).unwrap().loss.terms[0];
        assert_eq!(term.target, "hinge");
        assert_eq!(
            term.quantity,
            Quantity::JointError {
                axis: 3,
                target: 0.0
            }
        );
        assert_eq!(term.weight, 0.2);
    }

    #[test]
    fn the_algorithm_table_gives_the_shared_settings() {
        let text = format!("{SMALL}\n[algorithm]\nalgorithm = \"shac\"\nwindow = 16\n");
        let Algorithm::Shac(settings) = parse_text(&text).unwrap().algorithm else {
            panic!("not shac")
        };
        assert_eq!(settings.window, 16);
        assert_eq!(
            settings.gamma,
            crate::learn::algorithm::ShacSettings::default().gamma
        );
    }

    #[test]
    fn a_termination_names_a_body_and_a_height_range_for_the_actor_critic() {
        let shac = "\n[algorithm]\nalgorithm = \"shac\"\nwindow = 5\n";
        let text = format!("{SMALL}{shac}\n[termination]\nbody = \"pole\"\nheight = [0.5, 3.0]\n");
        let task = parse_text(&text).unwrap();
        let pole = task.model.body_index("pole").unwrap();
        assert_eq!(
            task.termination,
            Some(Termination {
                body: pole,
                height: [0.5, 3.0],
                min_upright: None,
            })
        );
        let tilt = text.replace("[0.5, 3.0]", "[0.5, 3.0]\nmin_upright = 0.5");
        assert_eq!(
            parse_text(&tilt).unwrap().termination.unwrap().min_upright,
            Some(0.5)
        );
        assert_eq!(parse_text(SMALL).unwrap().termination, None);
        let cases = [
            (
                text.replace("body = \"pole\"\nheight", "body = \"kart\"\nheight"),
                "dir/task.toml:35: termination.body: no body 'kart'",
            ),
            (
                text.replace("[0.5, 3.0]", "[3.0, 0.5]"),
                "dir/task.toml:36: termination.height: must be [low, high]",
            ),
            (
                text.replace("[0.5, 3.0]", "[0.5]"),
                "dir/task.toml:36: termination.height: ",
            ),
            (
                text.replace("height = [0.5, 3.0]", "height = [0.5, 3.0]\nheigth = 1"),
                "dir/task.toml:37: termination.heigth: unknown field",
            ),
            (
                text.replace("[0.5, 3.0]", "[0.5, 3.0]\nmin_upright = 2.0"),
                "dir/task.toml:37: termination.min_upright: must be a cosine",
            ),
            (
                text.replace(shac, ""),
                "dir/task.toml:30: termination: only the actor-critic",
            ),
        ];
        for (text, expected) in cases {
            let message = parse_text(&text).unwrap_err().to_string();
            assert!(
                message.contains(expected),
                "expected '{expected}', got '{message}'"
            );
        }
    }

    #[test]
    fn initial_joint_ranges_are_read_for_the_actor_critic_and_bad_ones_refused() {
        assert!(!SMALL.contains("randomization"));
        let shac = "\n[algorithm]\nalgorithm = \"shac\"\nwindow = 5\n";
        let ranges = "\n[randomization]\njoint_angle = [-0.1, 0.1]\njoint_speed = [-0.5, 0.5]\n";
        let text = format!("{SMALL}{shac}{ranges}");
        let r = parse_text(&text).unwrap().randomization;
        assert_eq!(r.joint_angle, Some((-0.1, 0.1)));
        assert_eq!(r.joint_speed, Some((-0.5, 0.5)));
        assert!(
            !parse_text(SMALL)
                .unwrap()
                .randomization
                .moves_initial_state()
        );
        let cases = [
            (
                text.replace("[-0.1, 0.1]", "[0.1, -0.1]"),
                "dir/task.toml:35: randomization.joint_angle: must be [low, high]",
            ),
            (
                text.replace("[-0.5, 0.5]", "[-0.5, nan]"),
                "dir/task.toml:36: randomization.joint_speed: must be [low, high]",
            ),
            (
                text.replace("[-0.5, 0.5]", "0.5"),
                "dir/task.toml:36: randomization.joint_speed: ",
            ),
            (
                text.replace(shac, ""),
                "dir/task.toml:31: randomization.joint_angle: only the actor-critic",
            ),
        ];
        for (text, expected) in cases {
            let message = parse_text(&text).unwrap_err().to_string();
            assert!(
                message.contains(expected),
                "expected '{expected}', got '{message}'"
            );
        }
    }

    #[test]
    fn a_model_file_is_read_relative_to_the_task_file() {
        let text = SMALL.replace("name = \"cartpole\"", "file = \"models/cartpole.toml\"");
        let task = parse_text(&text).unwrap();
        assert_eq!(task.model, crate::io::models::builtin("cartpole").unwrap());
        let missing = SMALL.replace("name = \"cartpole\"", "file = \"models/none.toml\"");
        let message = parse_text(&missing).unwrap_err().to_string();
        assert!(
            message.contains("dir/task.toml:8: model.file: "),
            "{message}"
        );
        assert!(message.contains("models/none.toml"), "{message}");
    }
}
