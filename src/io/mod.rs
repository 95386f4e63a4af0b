//! Input and output: MJCF import, the shipped models, atomic files, plots, the viewer and
//! progress bars.

pub mod files;
pub mod mjcf;
pub mod models;
pub mod plot;
pub mod progress;
pub mod viewer;
