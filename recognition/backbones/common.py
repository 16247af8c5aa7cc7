"""Pieces every backbone family shares: input normalisation, activations, conv units, SE, heads.

Kept in one place so that the input convention ((x - 127.5) / 128 on raw RGB 0..255) and the
InsightFace embedding head are written once and every exported model needs no preprocessing.
"""
import contextlib

from mxnet import init, nd
from mxnet.gluon import nn

from ..errors import ConfigError

INPUT_MEAN = 127.5
INPUT_SCALE = 1.0 / 128.0
ACTIVATIONS = ("relu", "leaky", "prelu", "relu6", "swish")
# InsightFace's MXNet models use this epsilon and momentum for every BatchNorm.
BN_EPS = 2e-5
BN_MOMENTUM = 0.9


def normalize(F, x):
    """Raw RGB 0..255 -> roughly [-1, 1], the convention of InsightFace's MXNet models."""
    return (x - INPUT_MEAN) * INPUT_SCALE


def global_avg_pool(F, x):
    """(N, C, H, W) -> (N, C, 1, 1) as a Pooling op, which exports to ONNX GlobalAveragePool.

    `F.mean(axis=(2, 3))` computes the same but MXNet 1.9's ONNX exporter writes it as a
    ReduceMean that onnx 1.16's checker rejects.
    """
    return F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type="avg")


def make_act(act, channels=1, prelu_init=0.25, leaky_slope=0.2):
    """One activation layer by name.

    `channels` sizes the per-channel PReLU slope; `leaky_slope` is LeakyReLU's fixed slope (0.2 in
    the Inception-ResNet TRSF paper), `prelu_init` PReLU's initial slope.
    """
    if act == "relu":
        return nn.Activation("relu")
    if act == "leaky":
        return nn.LeakyReLU(leaky_slope)
    if act == "prelu":
        return ChannelPReLU(channels, prelu_init)
    if act == "relu6":
        return nn.HybridLambda(lambda F, x: F.clip(x, 0.0, 6.0), prefix="relu6_")
    if act == "swish":
        return nn.Swish()
    raise ConfigError(f"unknown activation {act!r}; valid: {', '.join(ACTIVATIONS)}")


PRELU_FORMS = ("conv", "op")
_PRELU = {"form": "conv"}  # the form ChannelPReLU blocks take when built without one


def _check_form(form):
    if form not in PRELU_FORMS:
        raise ConfigError(f"unknown PReLU form {form!r}; valid: {', '.join(PRELU_FORMS)}")
    return form


def prelu_form_for(ctx):
    """The PReLU form training builds on ``ctx`` (a Context or a list of them): 'conv' on
    every device for now.

    'op' (MXNet's one-op PReLU) would keep one output per PReLU instead of four, about 2/3 of
    IResNet's activation memory, and is the natural GPU choice; but MXNet 1.9.1 returns its
    slope gradient multiplied by the slope in some positions of a hybridized graph (see
    :class:`ChannelPReLU`; pinned by tests/backbones/test_backbones.py), and its backward is
    shared by CPU and GPU. Once ``pytest tests/backbones/test_backbones.py -k gpu`` passes on a
    GPU, return 'op' for GPU contexts here: training and tools/plan.py both follow this function.
    """
    _ = ctx
    return "conv"


@contextlib.contextmanager
def prelu_form(form):
    """Build every ChannelPReLU created inside the ``with`` block in ``form``.

    The registry's ``get_model`` passes no form to the backbones, so this is how a caller picks
    it: ``with prelu_form(prelu_form_for(ctx)): net = get_model(name)``.
    """
    previous = _PRELU["form"]
    _PRELU["form"] = _check_form(form)
    try:
        yield form
    finally:
        _PRELU["form"] = previous


def _prelu_blocks(net):
    found = []
    net.apply(lambda block: found.append(block) if isinstance(block, ChannelPReLU) else None)
    return found


def _drop_graphs(net):
    """Forget every traced graph, so that the next call traces the blocks as they are now."""
    net.apply(lambda block: block._clear_cached_op()
              if isinstance(block, nn.HybridBlock) else None)


@contextlib.contextmanager
def prelu_form_of(net, form, input_shape=None):
    """``net`` (built) with every ChannelPReLU in ``form`` inside the ``with`` block.

    Meant for export: ONNX needs the 'conv' form (see :class:`ChannelPReLU`), and
    ``net.export`` writes the graph the network last traced. When a block changes, the traced
    graphs are dropped on entry and on exit; ``input_shape`` then runs one inference pass of
    zeros inside, so that ``net.export`` has a graph to write (as after ``net.cast``).
    """
    blocks = _prelu_blocks(net)
    previous = [block.form for block in blocks]
    changed = any(old != _check_form(form) for old in previous)
    try:
        if changed:
            for block in blocks:
                block.form = form
            _drop_graphs(net)
            if input_shape is not None:
                param = next(iter(net.collect_params().values()))
                net(nd.zeros(input_shape, ctx=param.list_ctx()[0], dtype=param.dtype))
        yield net
    finally:
        if changed:
            for block, old in zip(blocks, previous):
                block.form = old
            _drop_graphs(net)


class ChannelPReLU(nn.HybridBlock):
    """Per-channel PReLU on NCHW maps: relu(x) + alpha_c * min(x, 0), in one of two forms.

    - 'conv' (the default): the slope multiply is a 1x1 depthwise convolution, so the block
      is four ops (minimum, convolution, relu, add) with four outputs kept for backward.
      MXNet 1.9's CPU backward of the PReLU op is about 3x slower than the convolution's, and
      PReLU dominated the CPU step time of PReLU networks. The (C,1,1,1) slope also exports to
      ONNX without the PReLU op's trap (its (C,) slope broadcasts over width, not channels).
    - 'op': MXNet's one-op PReLU (``LeakyReLU(act_type='prelu')``) on the same slope viewed
      as (C,): one output, so IResNet-100 keeps 31.8M values per 112x112 image instead of
      48.1M. Meant for GPUs (:func:`prelu_form_for`); export with :func:`prelu_form_of` 'conv'.
      Caution: in some positions of a hybridized graph MXNet 1.9.1 returns its slope
      gradient multiplied by the slope (as if reduced from the data gradient instead of the
      output gradient): seen on the CPU in the squeeze-excitation block and in a conv ->
      PReLU -> conv chain, while r_tiny's residual units and imperative runs are right. The data
      gradient is right. MXNet's source shares this backward between CPU and GPU: run
      ``pytest tests/backbones/test_backbones.py -k gpu`` on a GPU before training with this form.

    Both forms hold one parameter, ``alpha`` of shape (C,1,1,1), under the same name: a
    checkpoint saved from either loads into the other. ``form=None`` takes the form set by
    :func:`prelu_form` (default 'conv') when the block is built; ``form`` can be changed on a
    built block (:func:`prelu_form_of`), which takes effect when the block is traced again.
    """

    def __init__(self, channels, init_value=0.25, form=None, **kwargs):
        super().__init__(**kwargs)
        self._channels = channels
        self.form = _check_form(form or _PRELU["form"])
        self.alpha = self.params.get("alpha", shape=(channels, 1, 1, 1),
                                     init=init.Constant(init_value))

    def hybrid_forward(self, F, x, alpha):
        if self.form == "op":
            # squeeze, not reshape: after an inference pass of the conv form MKL-DNN may hold
            # alpha in its grouped-weight layout, which its reshape cannot reorder
            return F.LeakyReLU(x, gamma=F.squeeze(alpha, axis=(1, 2, 3)), act_type="prelu")
        negative = F.Convolution(F.minimum(x, 0.0), alpha, kernel=(1, 1), no_bias=True,
                                 num_filter=self._channels, num_group=self._channels)
        return F.relu(x) + negative


def batch_norm(channels=0, eps=BN_EPS, momentum=BN_MOMENTUM, scale=True):
    """BatchNorm with the project defaults (InsightFace's eps 2e-5, momentum 0.9)."""
    return nn.BatchNorm(epsilon=eps, momentum=momentum, scale=scale, in_channels=channels)


def conv_bn(channels, kernel, stride=1, pad=None, groups=1, act=None, bn_eps=BN_EPS,
            bn_momentum=BN_MOMENTUM, **act_kw):
    """Conv (no bias) -> BN -> optional activation, as one HybridSequential.

    `kernel` and `pad` may be ints or (h, w) tuples; `pad=None` means 'same' for odd kernels.
    """
    kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    if pad is None:
        pad = (kernel[0] // 2, kernel[1] // 2)
    block = nn.HybridSequential(prefix="")
    block.add(nn.Conv2D(channels, kernel, stride, pad, groups=groups, use_bias=False))
    block.add(batch_norm(channels, eps=bn_eps, momentum=bn_momentum))
    if act is not None:
        block.add(make_act(act, channels, **act_kw))
    return block


class SqueezeExcite(nn.HybridBlock):
    """Channel gate: GAP -> 1x1 conv (`reduced`) -> activation -> 1x1 conv (`channels`) ->
    sigmoid, times the input.

    IResNet's SE (InsightFace's fresnet) uses `reduced = channels // 16` and PReLU; EfficientNet's
    uses a quarter of the MBConv block's input channels and swish. `act` is a `make_act` name.
    """

    def __init__(self, channels, reduced, act, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.reduce = nn.Conv2D(reduced, 1)
            self.act = make_act(act, reduced)
            self.expand = nn.Conv2D(channels, 1)

    def hybrid_forward(self, F, x):
        gate = global_avg_pool(F, x)
        return F.broadcast_mul(x, F.sigmoid(self.expand(self.act(self.reduce(gate)))))


class EmbeddingHead(nn.HybridBlock):
    """InsightFace's output head: BN -> Dropout -> FC(embedding) -> BN.

    `pool='flatten'` is InsightFace's 'E' head (the whole 7x7 map feeds the FC, as in IResNet);
    `pool='gap'` averages the map first (FaceNet's Inception-ResNet, EfficientNet, ResNet-50
    v1b), which keeps the FC small for wide final maps. The last BN has a fixed gamma like
    InsightFace's `fc1`, whose output is the embedding.
    """

    def __init__(self, embedding_size=512, dropout=0.0, pool="flatten", in_channels=0, **kwargs):
        super().__init__(**kwargs)
        if pool not in ("flatten", "gap"):
            raise ConfigError(f"unknown head pool {pool!r}; valid: flatten, gap")
        self._pool = pool
        with self.name_scope():
            self.bn_in = batch_norm(in_channels)
            self.drop = nn.Dropout(dropout) if dropout > 0 else None
            self.fc = nn.Dense(embedding_size)
            self.bn_out = batch_norm(embedding_size, scale=False)

    def hybrid_forward(self, F, x):
        x = self.bn_in(x)
        if self._pool == "gap":
            x = F.flatten(global_avg_pool(F, x))
        if self.drop is not None:
            x = self.drop(x)
        return self.bn_out(self.fc(x))


def scaled(channels, width, divisor=8, minimum=8):
    """Channels times a width multiplier, rounded to a multiple of `divisor` (MobileNet rule)."""
    value = max(minimum, int(channels * width + divisor / 2) // divisor * divisor)
    if value < 0.9 * channels * width:
        value += divisor
    return value
