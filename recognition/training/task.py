"""What a network is trained to do, decided once per run from the config.

An `EmbeddingTask` trains a face embedding (margin softmax over the sharded classifier, scored
on pair sets); an `AttributeTask` trains several logit outputs (FacialNet, Liu et al.), one
cross-entropy each, scored on a held-out labelled `.rec`. Everything that differs between the
two lives here: the network's arguments and output check, the objective, the verifier and the
loss line of the log. A new kind of task is one class here plus one line in `task_for`.
"""
from ..backbones import is_attribute_model
from ..errors import ConfigError
from .objectives import AttributeObjective, FaceObjective
from .verifier import AttributeVerifier, Verifier

__all__ = ["EmbeddingTask", "AttributeTask", "task_for"]


class EmbeddingTask:
    """A face-embedding network of `embedding_size` outputs."""

    def network_kwargs(self, cfg):
        """`network_kwargs` with the embedding size the config asks for."""
        kwargs = dict(cfg.network_kwargs)
        kwargs.setdefault("embedding_size", cfg.embedding_size)
        return kwargs

    def check_output(self, outputs, cfg):
        """One output of `embedding_size` features (checked on the symbol, no forward pass)."""
        if isinstance(outputs, (list, tuple)) or len(outputs.list_outputs()) > 1:
            raise ConfigError(f"network {cfg.network!r} has several outputs; it cannot be "
                              f"trained as a face-embedding network")
        _, shapes, _ = outputs.infer_shape(data=(1, 3) + tuple(cfg.image_size))
        if shapes[0][1] != cfg.embedding_size:
            raise ConfigError(f"network {cfg.network!r} gives {shapes[0][1]}-d embeddings but "
                              f"embedding_size is {cfg.embedding_size}")

    def objective(self, cfg, workers, num_classes):
        return FaceObjective(cfg, workers, num_classes)

    def verifier(self, cfg, ctx):
        """Pair sets (`val_targets` in `val_data_dir`), or None when none are named."""
        if not cfg.val_targets:
            return None
        return Verifier(cfg.val_data_dir, cfg.val_targets, cfg.image_size, ctx,
                        best_target=cfg.best_target)

    def describe_loss(self, cfg):
        center = (f", center loss weight {cfg.center_loss_weight:g} alpha "
                  f"{cfg.center_loss_alpha:g}" if cfg.center_loss_weight > 0 else "")
        return (f"loss: {cfg.loss} s={cfg.margin_s:g} m1={cfg.margin_m1:g} "
                f"m2={cfg.margin_m2:g} m3={cfg.margin_m3:g}{center}")


class AttributeTask:
    """A network with one logit output per attribute (label columns 1, 2, ...)."""

    def network_kwargs(self, cfg):
        return dict(cfg.network_kwargs)

    def check_output(self, outputs, cfg):
        """The outputs are checked against `attribute_weights` at the first step."""

    def objective(self, cfg, workers, num_classes):
        return AttributeObjective(cfg, workers)

    def verifier(self, cfg, ctx):
        """A held-out `.rec` packed with `--pack-label` (`val_rec`), or None."""
        if not cfg.val_rec:
            return None
        return AttributeVerifier(cfg.val_rec, len(cfg.attribute_weights), cfg.image_size, ctx,
                                 cfg.attribute_names, cfg.best_target)

    def describe_loss(self, cfg):
        return f"loss: cross-entropy per attribute output, weights {cfg.attribute_weights}"


def task_for(cfg):
    """The task `cfg.network` is built for."""
    return AttributeTask() if is_attribute_model(cfg.network) else EmbeddingTask()
