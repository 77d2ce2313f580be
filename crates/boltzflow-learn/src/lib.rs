//! Boltzmann generators.
