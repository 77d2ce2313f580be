"""boltzflow: Boltzmann generators, VAE collective variables, variational autoregressive
networks and kinetics, on a Rust engine. See the project README."""

from ._boltzflow import (
    TICA,
    BoltzmannGenerator,
    System,
    TICAModel,
    read_trajectory,
    train,
    write_trajectory,
)

__all__ = [
    "TICA",
    "BoltzmannGenerator",
    "System",
    "TICAModel",
    "read_trajectory",
    "train",
    "write_trajectory",
]
