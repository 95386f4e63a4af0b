//! `backdrive._backdrive`: the compiled core of the `backdrive` Python package.
//!
//! Every class here wraps the Rust API one to one; the pure-Python layer (`pysrc/backdrive/`)
//! adds named body-state views, the PyTorch functions and the Gymnasium vector env. Arrays
//! cross the boundary as numpy `float32`: inputs are checked for dtype and shape before any
//! work (errors name the expected and the given shape), outputs are numpy arrays that own the
//! vectors Rust filled, so a read makes no copy beyond the Rust read itself. The GIL is released
//! around every call that waits for the GPU.

use std::sync::{Arc, Mutex};

use backdrive::engine::gpu::Gpu;
use backdrive::engine::layout::{BODY_STATE_LEN, Compiled, ParamSlot};
use backdrive::error::Error;
use backdrive::grad::loss::{Loss, LossTerm, Quantity, When};
use backdrive::grad::rollout::{Rollout as RustRollout, RolloutOptions};
use backdrive::learn::tasks::Task;
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray};
use numpy::{PyArrayDescrMethods, PyUntypedArrayMethods, dtype};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

create_exception!(
    backdrive,
    BackdriveError,
    PyException,
    "Base class of every error the Rust core of backdrive reports."
);
create_exception!(
    backdrive,
    ModelError,
    BackdriveError,
    "A model file or model data is malformed (the message starts with file:line)."
);
create_exception!(
    backdrive,
    InvalidInputError,
    BackdriveError,
    "An argument was out of range or had the wrong size."
);
create_exception!(
    backdrive,
    GpuError,
    BackdriveError,
    "No GPU adapter, a rejected GPU request, a shader error, or a batch too large for the device."
);
create_exception!(
    backdrive,
    NonFiniteGradientError,
    BackdriveError,
    "A gradient became NaN or infinite."
);
create_exception!(
    backdrive,
    FileError,
    BackdriveError,
    "Reading or writing a file failed (the message starts with the path)."
);

/// The Python exception for a Rust error, with the Rust message unchanged.
fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Model(_) => ModelError::new_err(message),
        Error::Io { .. } => FileError::new_err(message),
        Error::NoAdapter(_) | Error::Gpu(_) | Error::Shader(_) | Error::TooLarge(_) => {
            GpuError::new_err(message)
        }
        Error::NonFiniteGradient(_) => NonFiniteGradientError::new_err(message),
        Error::InvalidInput(_) => InvalidInputError::new_err(message),
    }
}

static GPU: Mutex<Option<Arc<Gpu>>> = Mutex::new(None);

/// The process's GPU, created on first use: creating a device and compiling the pipelines is
/// slow on CPU drivers, and every simulator of a process can share them.
fn shared_gpu() -> PyResult<Arc<Gpu>> {
    let mut slot = GPU
        .lock()
        .map_err(|_| GpuError::new_err("the GPU lock was poisoned by an earlier panic"))?;
    if let Some(gpu) = slot.as_ref() {
        return Ok(gpu.clone());
    }
    let gpu = Arc::new(Gpu::new().map_err(to_py)?);
    *slot = Some(gpu.clone());
    Ok(gpu)
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Reads `value` as a float array of exactly `expected` shape into an owned vector (row-major).
/// float32 and float64 arrays, and nested sequences of numbers, are accepted; arrays of any other
/// dtype are a `TypeError`, any other shape a `ValueError`, both naming what was expected and what was given.
fn input_array(value: &Bound<'_, PyAny>, name: &str, expected: &[usize]) -> PyResult<Vec<f32>> {
    let py = value.py();
    let array: Bound<'_, PyUntypedArray> = match value.extract() {
        Ok(a) => a,
        Err(_) => py
            .import("numpy")?
            .getattr("asarray")?
            .call1((value, "float64"))
            .map_err(|e| PyTypeError::new_err(format!("{name}: expected a float array: {e}")))?
            .extract()
            .map_err(|_| {
                PyTypeError::new_err(format!("{name}: expected a float array, got {value}"))
            })?,
    };
    let dt = array.dtype();
    let is_f32 = dt.is_equiv_to(&dtype::<f32>(py));
    let is_f64 = dt.is_equiv_to(&dtype::<f64>(py));
    if !is_f32 && !is_f64 {
        return Err(PyTypeError::new_err(format!(
            "{name}: expected dtype float32 (or float64), got dtype {dt} with shape {}",
            shape_text(array.shape())
        )));
    }
    if array.shape() != expected {
        return Err(PyValueError::new_err(format!(
            "{name}: expected shape {}, got shape {}",
            shape_text(expected),
            shape_text(array.shape())
        )));
    }
    let out: Vec<f32> = if is_f32 {
        let a: PyReadonlyArrayDyn<'_, f32> = array.extract()?;
        match a.as_slice() {
            Ok(s) => s.to_vec(),
            Err(_) => a.as_array().iter().copied().collect(),
        }
    } else {
        let a: PyReadonlyArrayDyn<'_, f64> = array.extract()?;
        a.as_array().iter().map(|&v| v as f32).collect()
    };
    if let Some(bad) = out.iter().position(|v| !v.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "{name}: entry {bad} (row-major) is not finite"
        )));
    }
    Ok(out)
}

/// A float32 numpy array handed to Python.
type F32Array<'py> = Bound<'py, PyArrayDyn<f32>>;

/// A numpy array of `shape` that owns `data` (no copy).
fn output_array<'py>(
    py: Python<'py>,
    data: Vec<f32>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    PyArray1::from_vec(py, data).reshape(shape.to_vec())
}

fn slot_name(model: &backdrive::Model, slot: &ParamSlot) -> String {
    let body = |b: usize| model.bodies.get(b).map_or("?", |x| x.name.as_str());
    let joint = |j: usize| model.joints.get(j).map_or("?", |x| x.name.as_str());
    let actuator = |a: usize| model.actuators.get(a).map_or("?", |x| x.name.as_str());
    match *slot {
        ParamSlot::InverseMass(b) => format!("inverse_mass[{}]", body(b)),
        ParamSlot::InverseInertia(b, k) => format!("inverse_inertia[{}][{k}]", body(b)),
        ParamSlot::ContactFriction(c) => format!("contact_friction[{c}]"),
        ParamSlot::ContactRestitution(c) => format!("contact_restitution[{c}]"),
        ParamSlot::ServoGain(a) => format!("servo_gain[{}]", actuator(a)),
        ParamSlot::MaxForce(a) => format!("max_force[{}]", actuator(a)),
        ParamSlot::MaxVelocity(a) => format!("max_velocity[{}]", actuator(a)),
        ParamSlot::AnchorParent(j, k) => format!("anchor_parent[{}][{k}]", joint(j)),
        ParamSlot::AnchorChild(j, k) => format!("anchor_child[{}][{k}]", joint(j)),
        ParamSlot::PairFriction(p) => format!("pair_friction[{p}]"),
        ParamSlot::PairRestitution(p) => format!("pair_restitution[{p}]"),
        ParamSlot::WorldContactFriction(c) => format!("world_contact_friction[{c}]"),
        ParamSlot::WorldContactRestitution(c) => format!("world_contact_restitution[{c}]"),
        ParamSlot::World => "world".into(),
    }
}

/// A robot model: bodies, joints, actuators and settings.
#[pyclass(module = "backdrive", frozen)]
struct Model {
    model: backdrive::Model,
    /// Compiled once; every simulator and rollout of this model shares it.
    compiled: Arc<Compiled>,
}

impl Model {
    fn new(model: backdrive::Model) -> PyResult<Model> {
        model.validate().map_err(to_py)?;
        let compiled = Arc::new(Compiled::new(&model));
        Ok(Model { model, compiled })
    }
}

#[pymethods]
impl Model {
    /// The model's name.
    #[getter]
    fn name(&self) -> String {
        self.model.name.clone()
    }
    /// Body names, in the order of the body axis of state arrays.
    #[getter]
    fn body_names(&self) -> Vec<String> {
        self.model.bodies.iter().map(|b| b.name.clone()).collect()
    }
    /// Joint names.
    #[getter]
    fn joint_names(&self) -> Vec<String> {
        self.model.joints.iter().map(|j| j.name.clone()).collect()
    }
    /// Actuator names, in the order of the command axis.
    #[getter]
    fn actuator_names(&self) -> Vec<String> {
        self.model
            .actuators
            .iter()
            .map(|a| a.name.clone())
            .collect()
    }
    /// Number of bodies (the static world not counted).
    #[getter]
    fn n_bodies(&self) -> usize {
        self.model.bodies.len()
    }
    /// Number of actuators (commands per instance).
    #[getter]
    fn n_actuators(&self) -> usize {
        self.model.actuators.len()
    }
    /// Time step in seconds.
    #[getter]
    fn dt(&self) -> f32 {
        self.compiled.header.dt
    }
    /// Floats in one instance's raw state: 13 per body, the world first, then one warm-start
    /// impulse per constraint row, then one activation per actuator with activation dynamics.
    #[getter]
    fn state_len(&self) -> usize {
        self.compiled.header.state_len as usize
    }
    /// Physical parameters per instance.
    #[getter]
    fn param_len(&self) -> usize {
        self.compiled.header.param_len as usize
    }
    /// What each physical-parameter slot means, e.g. `inverse_mass[torso]`.
    #[getter]
    fn param_names(&self) -> Vec<String> {
        self.compiled
            .param_slots
            .iter()
            .map(|s| slot_name(&self.model, s))
            .collect()
    }
    /// One instance's default physical parameters, shape `(param_len,)`.
    fn default_params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let p = self.compiled.default_params.clone();
        let len = p.len();
        output_array(py, p, &[len])
    }
    /// One instance's initial raw state, shape `(state_len,)`.
    fn initial_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let s = self.compiled.initial_state.clone();
        let len = s.len();
        output_array(py, s, &[len])
    }
    /// The model as TOML text (the format of `models/README.md`).
    fn to_toml(&self) -> String {
        self.model.to_toml()
    }
    fn __repr__(&self) -> String {
        format!(
            "Model('{}', bodies={}, actuators={})",
            self.model.name,
            self.model.bodies.len(),
            self.model.actuators.len()
        )
    }
}

/// Loads a shipped model by name, a TOML model file or a MuJoCo MJCF (`.xml`) file.
#[pyfunction]
fn load(py: Python<'_>, name_or_path: std::path::PathBuf) -> PyResult<Model> {
    let spec = name_or_path.to_string_lossy().into_owned();
    let model = py
        .detach(|| backdrive::io::models::load(&spec))
        .map_err(to_py)?;
    Model::new(model)
}

/// The names of the shipped models.
#[pyfunction]
fn model_names() -> Vec<&'static str> {
    backdrive::io::models::names()
}

/// The names of the built-in tasks.
#[pyfunction]
fn task_names() -> Vec<&'static str> {
    backdrive::learn::tasks::names()
}

/// N instances of one model on the GPU.
#[pyclass(module = "backdrive._backdrive", subclass)]
struct Simulator {
    sim: backdrive::Simulator,
    model: Py<Model>,
}

impl Simulator {
    fn dims(&self) -> (usize, usize, usize, usize) {
        let c = self.sim.compiled();
        (
            self.sim.n_instances(),
            c.header.state_len as usize,
            c.header.param_len as usize,
            self.sim.model().actuators.len(),
        )
    }
}

#[pymethods]
impl Simulator {
    #[new]
    #[pyo3(signature = (model, n = 1))]
    fn new(py: Python<'_>, model: Py<Model>, n: usize) -> PyResult<Self> {
        let gpu = py.detach(shared_gpu)?;
        let m = model.get().model.clone();
        let compiled = model.get().compiled.clone();
        let sim = py
            .detach(|| backdrive::Simulator::with_compiled(gpu, &m, compiled, n))
            .map_err(to_py)?;
        Ok(Simulator { sim, model })
    }
    /// The model simulated.
    #[getter]
    fn model(&self, py: Python<'_>) -> Py<Model> {
        self.model.clone_ref(py)
    }
    /// Number of instances.
    #[getter]
    fn n(&self) -> usize {
        self.sim.n_instances()
    }
    /// Advances every instance by `steps` steps, on the GPU, without the GIL.
    #[pyo3(signature = (steps = 1))]
    fn step(&mut self, py: Python<'_>, steps: u32) -> PyResult<()> {
        let sim = &mut self.sim;
        py.detach(|| sim.step(steps)).map_err(to_py)
    }
    /// Sets every instance's commands, shape `(n, actuators)`.
    fn set_commands(&mut self, py: Python<'_>, commands: &Bound<'_, PyAny>) -> PyResult<()> {
        let (n, _, _, a) = self.dims();
        let data = input_array(commands, "commands", &[n, a])?;
        let sim = &mut self.sim;
        py.detach(|| sim.set_commands(&data)).map_err(to_py)
    }
    /// Every instance's raw state, shape `(n, state_len)` (see `Model.state_len`).
    fn state_raw<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let (n, len, _, _) = self.dims();
        let sim = &self.sim;
        let raw = py.detach(|| sim.read_state_raw()).map_err(to_py)?;
        output_array(py, raw, &[n, len])
    }
    /// Overwrites every instance's raw state, shape `(n, state_len)`.
    fn set_state_raw(&mut self, py: Python<'_>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let (n, len, _, _) = self.dims();
        let data = input_array(state, "state", &[n, len])?;
        let sim = &mut self.sim;
        py.detach(|| sim.write_state_raw(&data)).map_err(to_py)
    }
    /// Every instance's physical parameters, shape `(n, param_len)`.
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let (n, _, p, _) = self.dims();
        let sim = &self.sim;
        let raw = py.detach(|| sim.params()).map_err(to_py)?;
        output_array(py, raw, &[n, p])
    }
    /// Sets every instance's physical parameters, shape `(n, param_len)`.
    fn set_params(&mut self, py: Python<'_>, params: &Bound<'_, PyAny>) -> PyResult<()> {
        let (n, _, p, _) = self.dims();
        let data = input_array(params, "params", &[n, p])?;
        let sim = &mut self.sim;
        py.detach(|| sim.set_params(&data)).map_err(to_py)
    }
    /// Resets every instance to the model's initial state (parameters and commands stay).
    fn reset(&mut self, py: Python<'_>) -> PyResult<()> {
        let sim = &mut self.sim;
        py.detach(|| sim.reset()).map_err(to_py)
    }
}

/// A `Rollout` holds no step hook (the only part of it that is not `Send`), so moving it to
/// another thread while Python's GIL is released is sound.
struct SendRollout(RustRollout);
// SAFETY: `Rollout` is `!Send` only through its optional `Box<dyn StepHook>`, which this
// wrapper never sets; every other field (wgpu handles, vectors) is `Send`.
unsafe impl Send for SendRollout {}
// SAFETY: as above; `&SendRollout` gives only shared access to `Send + Sync` wgpu handles.
unsafe impl Sync for SendRollout {}

impl SendRollout {
    /// The rollout, borrowed through the wrapper so that closures capture the `Send` wrapper
    /// rather than the field (edition 2021+ closures capture disjoint fields).
    fn get(&mut self) -> &mut RustRollout {
        &mut self.0
    }
}

fn f32_list(d: &Bound<'_, PyDict>, key: &str, default: [f32; 3]) -> PyResult<[f32; 3]> {
    match d.get_item(key)? {
        None => Ok(default),
        Some(v) => {
            let v = input_array(&v, key, &[3])?;
            Ok([v[0], v[1], v[2]])
        }
    }
}

/// Reads one loss term from a dict: `{"body": NAME | "joint": NAME, "quantity": KIND,
/// "weight": W, "when": "every_step" | "final", ...}`; `healthy_height` takes `"range": [min,
/// max]`, and `control_cost` names no body (it sums the squared commands).
fn loss_term(k: usize, d: &Bound<'_, PyDict>) -> PyResult<LossTerm> {
    let get_str = |key: &str| -> PyResult<Option<String>> {
        d.get_item(key)?.map(|v| v.extract::<String>()).transpose()
    };
    let quantity_name = get_str("quantity")?
        .ok_or_else(|| PyValueError::new_err(format!("loss term {k}: missing 'quantity'")))?;
    let weight: f32 = d
        .get_item("weight")?
        .map(|v| v.extract())
        .transpose()?
        .unwrap_or(1.0);
    let when = match get_str("when")?.as_deref() {
        None | Some("every_step") => When::EveryStep,
        Some("final") => When::Final,
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "loss term {k}: 'when' must be 'every_step' or 'final', got '{other}'"
            )));
        }
    };
    let ones = [1.0; 3];
    let quantity = match quantity_name.as_str() {
        "position_error" => Quantity::PositionError {
            target: f32_list(d, "target", [0.0; 3])?,
            mask: f32_list(d, "mask", ones)?,
        },
        "velocity_error" => Quantity::VelocityError {
            target: f32_list(d, "target", [0.0; 3])?,
            mask: f32_list(d, "mask", ones)?,
        },
        "angular_velocity_error" => Quantity::AngularVelocityError {
            target: f32_list(d, "target", [0.0; 3])?,
            mask: f32_list(d, "mask", ones)?,
        },
        "orientation_error" => {
            let t = match d.get_item("target")? {
                None => vec![0.0, 0.0, 0.0, 1.0],
                Some(v) => input_array(&v, "target", &[4])?,
            };
            Quantity::OrientationError {
                target: [t[0], t[1], t[2], t[3]],
            }
        }
        "joint_error" => Quantity::JointError {
            axis: d
                .get_item("axis")?
                .map(|v| v.extract())
                .transpose()?
                .unwrap_or(0),
            target: d
                .get_item("target")?
                .map(|v| v.extract())
                .transpose()?
                .unwrap_or(0.0),
        },
        "position" => Quantity::Position {
            direction: f32_list(d, "direction", [1.0, 0.0, 0.0])?,
        },
        "velocity" => Quantity::Velocity {
            direction: f32_list(d, "direction", [1.0, 0.0, 0.0])?,
        },
        "healthy_height" => {
            let range = d.get_item("range")?.ok_or_else(|| {
                PyValueError::new_err(format!(
                    "loss term {k}: healthy_height needs 'range': [min, max]"
                ))
            })?;
            let r = input_array(&range, "range", &[2])?;
            if !(r[0].is_finite() && r[1].is_finite() && r[0] <= r[1]) {
                return Err(PyValueError::new_err(format!(
                    "loss term {k}: 'range' must be [min, max] with min <= max, got [{}, {}]",
                    r[0], r[1]
                )));
            }
            Quantity::HealthyHeight {
                min_height: r[0],
                max_height: r[1],
            }
        }
        "control_cost" => Quantity::ControlCost,
        other => {
            return Err(PyValueError::new_err(format!(
                "loss term {k}: unknown quantity '{other}': expected position_error, \
                 velocity_error, angular_velocity_error, orientation_error, joint_error, \
                 position, velocity, healthy_height or control_cost"
            )));
        }
    };
    if matches!(quantity, Quantity::ControlCost) {
        // The squared commands of every actuator: no body or joint to name.
        if let Some(key) = ["body", "joint"]
            .into_iter()
            .find(|key| d.contains(*key).unwrap_or(false))
        {
            return Err(PyValueError::new_err(format!(
                "loss term {k}: control_cost takes no '{key}' (it sums every actuator's \
                 squared command)"
            )));
        }
        return Ok(LossTerm {
            target: String::new(),
            quantity,
            weight,
            when,
        });
    }
    let target = if matches!(quantity, Quantity::JointError { .. }) {
        get_str("joint")?
    } else {
        get_str("body")?
    }
    .ok_or_else(|| {
        PyValueError::new_err(format!(
            "loss term {k}: missing '{}'",
            if matches!(quantity, Quantity::JointError { .. }) {
                "joint"
            } else {
                "body"
            }
        ))
    })?;
    Ok(LossTerm {
        target,
        quantity,
        weight,
        when,
    })
}

/// A batch of differentiable rollouts of one model over a fixed horizon, under a loss.
#[pyclass(module = "backdrive._backdrive", subclass)]
struct Rollout {
    rollout: SendRollout,
    model: Py<Model>,
    horizon: u32,
    has_loss: bool,
}

impl Rollout {
    fn dims(&self) -> (usize, usize, usize, usize) {
        let c = self.rollout.0.compiled();
        (
            self.rollout.0.n_instances(),
            c.header.state_len as usize,
            c.header.param_len as usize,
            self.rollout.0.model().actuators.len(),
        )
    }

    /// Writes the inputs, or the defaults for those that are `None`.
    fn set_inputs(
        &mut self,
        py: Python<'_>,
        initial_state: Option<&Bound<'_, PyAny>>,
        commands: Option<&Bound<'_, PyAny>>,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let (n, len, p, a) = self.dims();
        let h = self.horizon as usize;
        let state = match initial_state {
            Some(s) => input_array(s, "initial_state", &[n, len])?,
            None => backdrive::engine::sim::broadcast_instances(
                &self.rollout.0.compiled().initial_state,
                n,
            ),
        };
        let commands = match commands {
            Some(c) => input_array(c, "commands", &[n, h, a])?,
            None => vec![0.0; n * h * a],
        };
        let params = match params {
            Some(x) => input_array(x, "params", &[n, p])?,
            None => backdrive::engine::sim::broadcast_instances(
                &self.rollout.0.compiled().default_params,
                n,
            ),
        };
        let r = &mut self.rollout;
        py.detach(|| {
            r.get().set_initial_state(&state)?;
            r.get().set_commands(&commands)?;
            r.get().set_params(&params)
        })
        .map_err(to_py)
    }
}

#[pymethods]
impl Rollout {
    #[new]
    // The Python signature's keyword arguments.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (model, n, horizon, loss = None, gradient_decay = 1.0, checkpoint_every = None, truncation = None))]
    fn new(
        py: Python<'_>,
        model: Py<Model>,
        n: usize,
        horizon: u32,
        loss: Option<&Bound<'_, PyList>>,
        gradient_decay: f32,
        checkpoint_every: Option<u32>,
        truncation: Option<u32>,
    ) -> PyResult<Self> {
        let mut terms = Vec::new();
        if let Some(list) = loss {
            for (k, item) in list.iter().enumerate() {
                let d = item.cast::<PyDict>().map_err(|_| {
                    PyTypeError::new_err(format!("loss term {k}: expected a dict, got {item}"))
                })?;
                terms.push(loss_term(k, d)?);
            }
        }
        let has_loss = !terms.is_empty();
        let loss = Loss { terms };
        let mut options = RolloutOptions::new(horizon);
        options.gradient_decay = gradient_decay;
        options.checkpoint_every = checkpoint_every;
        options.truncation = truncation;
        let gpu = py.detach(shared_gpu)?;
        let m = model.get().model.clone();
        let compiled = model.get().compiled.clone();
        let rollout = py
            .detach(|| {
                RustRollout::with_compiled(gpu, &m, compiled, n, &loss, options).map(SendRollout)
            })
            .map_err(to_py)?;
        Ok(Rollout {
            rollout,
            model,
            horizon,
            has_loss,
        })
    }
    /// The model rolled out.
    #[getter]
    fn model(&self, py: Python<'_>) -> Py<Model> {
        self.model.clone_ref(py)
    }
    /// Number of instances.
    #[getter]
    fn n(&self) -> usize {
        self.rollout.0.n_instances()
    }
    /// Steps per rollout.
    #[getter]
    fn horizon(&self) -> u32 {
        self.horizon
    }
    /// Whether the rollout was given loss terms.
    #[getter]
    fn has_loss(&self) -> bool {
        self.has_loss
    }
    /// Runs the rollout forward and returns `(loss, final_state)`: each instance's loss,
    /// shape `(n,)`, and final raw state, shape `(n, state_len)`. Inputs left out take their
    /// defaults: the model's initial state, zero commands (shape `(n, horizon, actuators)`),
    /// the model's parameters (shape `(n, param_len)`).
    #[pyo3(signature = (initial_state = None, commands = None, params = None))]
    fn forward<'py>(
        &mut self,
        py: Python<'py>,
        initial_state: Option<&Bound<'py, PyAny>>,
        commands: Option<&Bound<'py, PyAny>>,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(F32Array<'py>, F32Array<'py>)> {
        self.set_inputs(py, initial_state, commands, params)?;
        let (n, len, _, _) = self.dims();
        let r = &mut self.rollout;
        let (loss, last) = py
            .detach(|| {
                let loss = r.get().forward()?;
                Ok::<_, Error>((loss, r.get().final_state_raw()?))
            })
            .map_err(to_py)?;
        Ok((
            output_array(py, loss, &[n])?,
            output_array(py, last, &[n, len])?,
        ))
    }
    /// Runs the rollout forward and the adjoint backward; returns a dict of numpy arrays:
    /// `loss` `(n,)`, `final_state` `(n, state_len)`, and the gradients of the loss (plus
    /// `final_state_seed . final_state` when a seed of shape `(n, state_len)` is given) with
    /// respect to `initial_state` `(n, state_len)`, `commands` `(n, horizon, actuators)` and
    /// `params` `(n, param_len)`.
    #[pyo3(signature = (initial_state = None, commands = None, params = None, final_state_seed = None))]
    fn gradients<'py>(
        &mut self,
        py: Python<'py>,
        initial_state: Option<&Bound<'py, PyAny>>,
        commands: Option<&Bound<'py, PyAny>>,
        params: Option<&Bound<'py, PyAny>>,
        final_state_seed: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (n, len, p, a) = self.dims();
        let seed = final_state_seed
            .map(|s| input_array(s, "final_state_seed", &[n, len]))
            .transpose()?;
        self.set_inputs(py, initial_state, commands, params)?;
        let r = &mut self.rollout;
        let (last, g) = py
            .detach(|| {
                r.get().forward()?;
                let last = r.get().final_state_raw()?;
                let g = r.get().backward_from(seed.as_deref(), &mut |_, _| {})?;
                Ok::<_, Error>((last, g))
            })
            .map_err(to_py)?;
        let h = self.horizon as usize;
        let out = PyDict::new(py);
        out.set_item("loss", output_array(py, g.loss, &[n])?)?;
        out.set_item("final_state", output_array(py, last, &[n, len])?)?;
        out.set_item(
            "initial_state",
            output_array(py, g.initial_state, &[n, len])?,
        )?;
        let commands = g.commands.unwrap_or_else(|| vec![0.0; n * h * a]);
        out.set_item("commands", output_array(py, commands, &[n, h, a])?)?;
        out.set_item("params", output_array(py, g.params, &[n, p])?)?;
        Ok(out)
    }
}

/// The per-instance state of a task's vector environment that the host keeps.
struct EnvInstance {
    params: Vec<f32>,
    displacement: [f32; 3],
}

/// The Rust side of `backdrive.gym.TaskVectorEnv`: a simulator of a task's robot, its
/// observations (the task policy's sensors, computed by the CPU twin of the observation kernel)
/// and per-step rewards (minus the task loss of the state after the step).
#[pyclass(module = "backdrive._backdrive")]
struct TaskEnv {
    task: Task,
    sim: backdrive::Simulator,
    policy: backdrive::learn::policy::PolicyLayout,
    loss_packed: Vec<u32>,
    instances: Vec<EnvInstance>,
    seed: u64,
    episode: Vec<u64>,
    elapsed: Vec<u32>,
    state: Vec<f32>,
}

impl TaskEnv {
    fn instance(&self, i: usize) -> backdrive::engine::twin::Instance<'_, f64> {
        let c = self.sim.compiled();
        let len = c.header.state_len as usize;
        let mut inst = backdrive::engine::twin::Instance::<f64>::new(c);
        inst.state = self.state[i * len..(i + 1) * len]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        inst.params = self.instances[i]
            .params
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        inst
    }

    fn observations(&self) -> Vec<f32> {
        let n = self.sim.n_instances();
        let mut out = Vec::with_capacity(n * self.policy.n_obs);
        for i in 0..n {
            let inst = self.instance(i);
            out.extend(
                backdrive::learn::policy::observe_twin(&self.policy, &inst, self.elapsed[i])
                    .iter()
                    .map(|&v| v as f32),
            );
        }
        out
    }

    /// Draws instance `i`'s parameters and start for its current episode, like training does.
    fn draw(&mut self, i: usize) {
        let c = self.sim.compiled();
        let r = &self.task.randomization;
        let episode = self.episode[i];
        let mut params = r.apply(c, self.seed, i as u64, episode);
        let d = r.displacement(self.seed, i as u64, episode);
        if r.shift.is_some() {
            for (k, slot) in c.param_slots.iter().enumerate() {
                if let ParamSlot::AnchorParent(j, axis) = *slot
                    && self.task.model.joints[j].parent.is_none()
                {
                    params[k] += d[axis];
                }
            }
        }
        let len = c.header.state_len as usize;
        let mut s = c.initial_state.clone();
        for b in 1..=self.task.model.bodies.len() {
            for (axis, da) in d.iter().enumerate() {
                s[b * BODY_STATE_LEN + axis] += da;
            }
        }
        self.state[i * len..(i + 1) * len].copy_from_slice(&s);
        self.instances[i] = EnvInstance {
            params,
            displacement: d,
        };
        self.elapsed[i] = 0;
    }

    fn upload(&mut self) -> Result<(), Error> {
        let params: Vec<f32> = self
            .instances
            .iter()
            .flat_map(|x| x.params.iter().copied())
            .collect();
        self.sim.set_params(&params)?;
        self.sim.write_state_raw(&self.state)
    }
}

#[pymethods]
impl TaskEnv {
    #[new]
    #[pyo3(signature = (task, n, seed = 0))]
    fn new(py: Python<'_>, task: &str, n: usize, seed: u64) -> PyResult<Self> {
        let task = backdrive::learn::tasks::builtin(task).map_err(to_py)?;
        let policy = backdrive::learn::policy::PolicyLayout::new(&task.policy, &task.model)
            .map_err(to_py)?;
        let loss_packed = task.loss.pack(&task.model).map_err(to_py)?;
        let gpu = py.detach(shared_gpu)?;
        let model = task.model.clone();
        let sim = py
            .detach(|| backdrive::Simulator::new(gpu, &model, n))
            .map_err(to_py)?;
        let len = sim.state_len();
        let instances = (0..n)
            .map(|_| EnvInstance {
                params: sim.compiled().default_params.clone(),
                displacement: [0.0; 3],
            })
            .collect();
        Ok(TaskEnv {
            task,
            sim,
            policy,
            loss_packed,
            instances,
            seed,
            episode: vec![0; n],
            elapsed: vec![0; n],
            state: vec![0.0; n * len],
        })
    }
    /// Observation size.
    #[getter]
    fn n_obs(&self) -> usize {
        self.policy.n_obs
    }
    /// Actions (actuator commands) per instance.
    #[getter]
    fn n_actions(&self) -> usize {
        self.task.model.actuators.len()
    }
    /// Steps per episode (the task's horizon).
    #[getter]
    fn horizon(&self) -> u32 {
        self.task.horizon
    }
    /// The task's one-line description.
    #[getter]
    fn description(&self) -> String {
        self.task.description.clone()
    }
    /// Number of instances.
    #[getter]
    fn n(&self) -> usize {
        self.sim.n_instances()
    }
    /// Model time step.
    #[getter]
    fn dt(&self) -> f32 {
        self.sim.compiled().header.dt
    }
    /// Steps taken in each instance's current episode, shape `(n,)`.
    fn elapsed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let v = self.elapsed.iter().map(|&t| t as f32).collect::<Vec<_>>();
        let n = v.len();
        output_array(py, v, &[n])
    }
    /// Each instance's displacement of the robot in its current episode, shape `(n, 3)`.
    fn displacements<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let v: Vec<f32> = self.instances.iter().flat_map(|x| x.displacement).collect();
        output_array(py, v, &[self.instances.len(), 3])
    }
    /// Starts a new episode in every instance; `seed` re-keys the randomisation. Returns the
    /// observations, shape `(n, n_obs)`.
    #[pyo3(signature = (seed = None))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        if let Some(s) = seed {
            self.seed = s;
            self.episode.fill(0);
        } else {
            self.episode.iter_mut().for_each(|e| *e += 1);
        }
        for i in 0..self.sim.n_instances() {
            self.draw(i);
        }
        py.detach(|| self.upload()).map_err(to_py)?;
        let obs = self.observations();
        output_array(py, obs, &[self.sim.n_instances(), self.policy.n_obs])
    }
    /// Applies `actions` (shape `(n, actions)`) for one step. Instances flagged in
    /// `reset_mask` (shape `(n,)`, bool) start a new episode instead (their reward is 0).
    /// Returns `(observations, rewards, elapsed)`.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: &Bound<'py, PyAny>,
        reset_mask: Vec<bool>,
    ) -> PyResult<(
        Bound<'py, PyArrayDyn<f32>>,
        Bound<'py, PyArrayDyn<f32>>,
        Bound<'py, PyArrayDyn<f32>>,
    )> {
        let n = self.sim.n_instances();
        let a = self.task.model.actuators.len();
        let commands = input_array(actions, "actions", &[n, a])?;
        if reset_mask.len() != n {
            return Err(PyValueError::new_err(format!(
                "reset_mask: expected shape ({n},), got shape ({},)",
                reset_mask.len()
            )));
        }
        let sim = &mut self.sim;
        self.state = py
            .detach(|| {
                sim.set_commands(&commands)?;
                sim.step(1)?;
                sim.read_state_raw()
            })
            .map_err(to_py)?;
        let mut rewards = vec![0.0f32; n];
        let n_terms = self.task.loss.terms.len();
        let any_reset = reset_mask.iter().any(|&r| r);
        for (i, reward) in rewards.iter_mut().enumerate() {
            if reset_mask[i] {
                self.episode[i] += 1;
                self.draw(i);
            } else {
                self.elapsed[i] += 1;
                let inst = self.instance(i);
                let loss = backdrive::grad::loss::loss_twin(
                    &self.loss_packed,
                    n_terms,
                    &inst,
                    self.elapsed[i],
                    self.task.horizon,
                    None,
                );
                *reward = -loss as f32;
            }
        }
        if any_reset {
            py.detach(|| self.upload()).map_err(to_py)?;
        }
        let obs = self.observations();
        let elapsed: Vec<f32> = self.elapsed.iter().map(|&t| t as f32).collect();
        Ok((
            output_array(py, obs, &[n, self.policy.n_obs])?,
            output_array(py, rewards, &[n])?,
            output_array(py, elapsed, &[n])?,
        ))
    }
}

/// Times `steps`-step calls of the Rust `Simulator::step` on `n` instances of `model` from
/// Rust (one untimed warm-up call, then `repeats` timed calls); returns the seconds of each
/// timed call. The baseline of `python/bench/overhead.py`.
#[pyfunction]
fn bench_rust_step(
    py: Python<'_>,
    model: Py<Model>,
    n: usize,
    steps: u32,
    repeats: usize,
) -> PyResult<Vec<f64>> {
    let gpu = py.detach(shared_gpu)?;
    let m = model.get().model.clone();
    let compiled = model.get().compiled.clone();
    py.detach(|| {
        let mut sim = backdrive::Simulator::with_compiled(gpu, &m, compiled, n)?;
        sim.step(steps)?;
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let t = std::time::Instant::now();
            sim.step(steps)?;
            times.push(t.elapsed().as_secs_f64());
        }
        Ok::<_, Error>(times)
    })
    .map_err(to_py)
}

/// The adapter in use: name, backend, device type and driver.
#[pyfunction]
fn adapter_info(py: Python<'_>) -> PyResult<String> {
    let gpu = py.detach(shared_gpu)?;
    let i = &gpu.info;
    Ok(format!(
        "{} ({:?}, {:?}, driver {} {})",
        i.name, i.backend, i.device_type, i.driver, i.driver_info
    ))
}

#[pymodule]
fn _backdrive(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Model>()?;
    m.add_class::<Simulator>()?;
    m.add_class::<Rollout>()?;
    m.add_class::<TaskEnv>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(model_names, m)?)?;
    m.add_function(wrap_pyfunction!(task_names, m)?)?;
    m.add_function(wrap_pyfunction!(adapter_info, m)?)?;
    m.add_function(wrap_pyfunction!(bench_rust_step, m)?)?;
    m.add("BackdriveError", py.get_type::<BackdriveError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("GpuError", py.get_type::<GpuError>())?;
    m.add(
        "NonFiniteGradientError",
        py.get_type::<NonFiniteGradientError>(),
    )?;
    m.add("FileError", py.get_type::<FileError>())?;
    m.add("BODY_STATE_LEN", BODY_STATE_LEN)?;
    Ok(())
}
