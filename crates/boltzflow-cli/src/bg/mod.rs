//! Boltzmann-generator commands: `train`, `sample`, `evaluate`, `report`, and the `demo`.

pub mod demo;
pub mod evaluate;
pub mod report;
pub mod sample;
