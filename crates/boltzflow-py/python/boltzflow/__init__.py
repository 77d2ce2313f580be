"""boltzflow: Boltzmann generators, VAE collective variables, variational autoregressive
networks and kinetics, on a Rust engine. See the project README.

Systems and samplers: ``System``, ``simulate``; trajectories: ``read_trajectory``,
``write_trajectory``; kinetics in deeptime's shape: ``TICA``, ``VAMP``, ``KMeans``,
``RegularSpace``, ``MaximumLikelihoodMSM``, ``implied_timescales``; runs: ``train`` (a TOML
file or a dict), ``load`` (a run directory as ``BoltzmannGenerator``, ``VAE`` or ``VAN``).
"""

from os import PathLike
from typing import Union

from ._boltzflow import (
    TICA,
    VAE,
    VAMP,
    VAN,
    BoltzmannGenerator,
    ClusterModel,
    KMeans,
    MarkovStateModel,
    MaximumLikelihoodMSM,
    RegularSpace,
    System,
    TICAModel,
    VAMPModel,
    implied_timescales,
    read_trajectory,
    run_model,
    simulate,
    train,
    write_trajectory,
)

_MODELS = {"bg": BoltzmannGenerator, "vae": VAE, "van": VAN}


def load(run_dir: Union[str, PathLike]) -> Union[BoltzmannGenerator, VAE, VAN]:
    """The trained model of a run directory, whichever kind its config.toml names."""
    return _MODELS[run_model(run_dir)](run_dir)


__all__ = [
    "TICA",
    "VAE",
    "VAMP",
    "VAN",
    "BoltzmannGenerator",
    "ClusterModel",
    "KMeans",
    "MarkovStateModel",
    "MaximumLikelihoodMSM",
    "RegularSpace",
    "System",
    "TICAModel",
    "VAMPModel",
    "implied_timescales",
    "load",
    "read_trajectory",
    "simulate",
    "train",
    "write_trajectory",
]
