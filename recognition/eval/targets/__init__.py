"""Evaluation targets shared by `face-verify` (`--target`) and training (`val_targets`, `val_rec`).

Adding a benchmark: one module here with a `base.Target` subclass (`claims` the names it serves,
`locate`, `load`, `score`, `metrics`, `summary`; `plot_data` for figures), listed in KINDS.
The CLI prints, reports and plots it, and training scores it every `verify_every` steps.
"""
from .attributes import AttributeTarget
from .base import Options, Target
from .ijb import IJBTarget
from .pairs import PairTarget

__all__ = ["KINDS", "Options", "Target", "open_target", "AttributeTarget", "IJBTarget",
           "PairTarget"]

# Asked in order; PairTarget claims every name (`<name>.bin`), so it stays last.
KINDS = (IJBTarget, PairTarget)


def open_target(name, data_dir, options, where):
    """The target called `name` under `data_dir` (its data located, not yet loaded); `where`
    says in errors where the name and folder came from."""
    kind = next(k for k in KINDS if k.claims(name))
    return kind(name, kind.locate(name, data_dir, where), options)
