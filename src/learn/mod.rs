//! Learning: policies, optimisers, the trainer, tasks, CMA-ES, open-loop gaits and the
//! counter-based random numbers that make training resumable bit for bit.

pub mod algorithm;
pub mod cmaes;
pub mod gait;
pub mod optim;
pub mod policy;
pub mod random;
pub mod shac;
pub mod task_file;
pub mod tasks;
pub mod train;
