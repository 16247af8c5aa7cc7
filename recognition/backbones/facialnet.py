"""FacialNet (Liu et al.): an 8-conv trunk shared by a gender (2-way) and an age-group (8-way) head.

Layer table from the paper (Table 1): conv 32/3/s2, 64/3, 128/3/s2, 128/3, 128/1, 256/3/s2 (no
pad), 512/3/s2, 512/1, then one 3x3/2 max-pool; at the paper's 75x75 grey input this leaves
512x2x2 = 2048 features, the FC input size its head tables list. The paper converts faces to grey;
`gray=True` does that inside (ITU-R 601 weights) so the network still takes RGB 0..255. The paper
does not mention BatchNorm; `batch_norm=True` adds it after each conv and after each hidden FC
of the heads (set False for the paper's plain conv / FC + ReLU). Heads per Tables 2-3: FC 512 ->
ReLU -> Dropout, FC 64 -> ReLU -> Dropout, FC to the classes; the outputs are logits (the softmax
belongs to the loss).

Why the heads need BatchNorm when the trunk has it: the trunk's output (BN -> ReLU -> max-pool)
is all positive (mean about 1.5 per feature at He initialisation), and so is every hidden FC's
ReLU output. A hidden unit's pre-activation is then mostly an offset shared by all images, and an
SGD step on its weight row (a multiple of that positive input) moves the offset of the whole
batch at once. Early in training, while the trunk's features carry little label information,
the cross-entropy is lowered fastest by silencing the heads, and momentum carries the units past
zero: within about 20-50 steps at lr 0.01 (a few hundred at 0.001) every unit of both 64-unit
layers is off for every image, the logits are the constant bias (loss ln 2 + ln 8), and no
gradient reaches the trunk again. Without dropout, without weight decay, without the trunk's
BatchNorm, with a small last-layer initialisation or with Adam the same happens (the pre-ReLU
mean of the gender head's 64 units went from +0.1 to -3.3 in 30 steps while the trunk's
features and the FC's input barely moved). BatchNorm after each hidden FC re-centres every unit
on every batch, so about half of the batch stays on and the trunk keeps learning.
"""
from mxnet.gluon import nn

from .common import batch_norm as make_bn
from .common import normalize

# (channels, kernel, stride, padding) of the 8 convolutions.
CONVS = ((32, 3, 2, 1), (64, 3, 1, 1), (128, 3, 2, 1), (128, 3, 1, 1), (128, 1, 1, 0),
         (256, 3, 2, 0), (512, 3, 2, 1), (512, 1, 1, 0))
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
GENDER_DROPOUT = (0.5, 0.3)
AGE_DROPOUT = (0.4, 0.2)
HIDDEN = (2048, 512, 64)  # head FC sizes: input (512x2x2 at 75x75), then the two hidden layers


def _classifier(classes, dropouts, prefix, batch_norm):
    """FC -> [BN] -> ReLU -> Dropout twice, then the logits FC; `net.gender[0]` is the first FC."""
    head = nn.HybridSequential(prefix=prefix)
    with head.name_scope():
        for units, rate in zip(HIDDEN[1:], dropouts):
            head.add(nn.Dense(units, use_bias=not batch_norm))
            if batch_norm:
                head.add(make_bn(units))
            head.add(nn.Activation("relu"))
            if rate > 0:
                head.add(nn.Dropout(rate))
        head.add(nn.Dense(classes))
    return head


class FacialNet(nn.HybridBlock):
    """Returns `(gender_logits (N, 2), age_logits (N, 8))` for RGB 0..255 input (75x75 native)."""

    def __init__(self, gender_classes=2, age_classes=8, gray=True, batch_norm=True, dropout=True,
                 **kwargs):
        super().__init__(**kwargs)
        keep = 1.0 if dropout else 0.0  # dropout=False: the heads without their Dropout layers
        self._gray = gray
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            for channels, kernel, stride, pad in CONVS:
                self.features.add(nn.Conv2D(channels, kernel, stride, pad, use_bias=not batch_norm))
                if batch_norm:
                    self.features.add(make_bn(channels))
                self.features.add(nn.Activation("relu"))
            self.features.add(nn.MaxPool2D(3, 2), nn.Flatten())
            self.gender = _classifier(gender_classes, [keep * r for r in GENDER_DROPOUT],
                                      "gender_", batch_norm)
            self.age = _classifier(age_classes, [keep * r for r in AGE_DROPOUT], "age_",
                                   batch_norm)

    def hybrid_forward(self, F, x):
        x = normalize(F, x)
        if self._gray:
            r, g, b = F.split(x, num_outputs=3, axis=1)
            x = r * GRAY_WEIGHTS[0] + g * GRAY_WEIGHTS[1] + b * GRAY_WEIGHTS[2]
        feat = self.features(x)
        return self.gender(feat), self.age(feat)
