"""Sizing model: what one training worker holds and sends, before anyone rents a cluster.

- :mod:`.backbone_stats`: parameters and activation sizes of a registry backbone, by shape
  inference (nothing is initialised or run), for the PReLU form a GPU or a CPU builds;
- :mod:`.memory`: per-worker memory of the backbone and of the sharded classifier;
- :mod:`.traffic`: bytes each worker sends per step (ring all-reduces, as training sends
  them) and their time at line rate (a lower bound);
- :mod:`.fit`: the largest per-worker batch and class count that fit a device;
- :mod:`.timing`: the classifier's work per step, its GEMM time at a stated GPU peak (a lower
  bound) and a time model calibrated on a machine;
- the command line, ``tools/plan.py`` (``face-plan``), is :mod:`recognition.commands.plan`.

Every figure is a formula of the run's settings; docs/scaling.md lists them and the assumptions
behind them, and benchmarks/bench_plan.py checks the classifier part against measured runs.
"""
from .memory import Setup, backbone_memory, classifier_memory, worker_memory
from .traffic import step_traffic

__all__ = ["Setup", "backbone_memory", "classifier_memory", "worker_memory", "step_traffic"]
