//! The engine: the GPU device, shader assembly, the compiled layout, batch buffers, the
//! [`Simulator`](sim::Simulator) and the CPU twins of every kernel stage.

pub mod batch;
pub mod buffers;
pub mod finite_check;
pub mod gpu;
pub mod layout;
pub mod shaders;
pub mod sim;
pub mod twin;
