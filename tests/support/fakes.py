"""Stand-ins for checkpoint tests: a trainer whose states file holds one number, and a tiny
initialised, hybridized network."""
import mxnet as mx
from mxnet import gluon


class FakeTrainer:
    """What `Checkpointer` calls on a `gluon.Trainer`: `save_states` writes `value`,
    `load_states` reads it back."""

    def __init__(self, value=0):
        self.value = value

    def save_states(self, path):
        with open(path, "w") as f:
            f.write(str(self.value))

    def load_states(self, path):
        self.value = int(open(path).read())


def small_net():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(3))
    net.initialize()
    net.hybridize()
    net(mx.nd.ones((1, 2)))
    return net
