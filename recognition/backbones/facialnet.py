"""FacialNet (seed 001): an 8-conv trunk shared by a gender (2-way) and an age-group (8-way) head.

Layer table from the seed (Table 1): conv 32/3/s2, 64/3, 128/3/s2, 128/3, 128/1, 256/3/s2 (no
pad), 512/3/s2, 512/1, then one 3x3/2 max-pool; at the seed's 75x75 grey input this leaves
512x2x2 = 2048 features, the FC input size its head tables list. The seed converts faces to grey;
`gray=True` does that inside (ITU-R 601 weights) so the network still takes RGB 0..255. The seed
does not mention BatchNorm; `batch_norm=True` adds it after each conv (set False for the paper's
plain conv + ReLU). Heads per Tables 2-3: FC 512 -> ReLU -> Dropout, FC 64 -> ReLU -> Dropout,
FC to the classes; the outputs are logits (the softmax belongs to the loss).
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


def _classifier(classes, dropouts, prefix):
    head = nn.HybridSequential(prefix=prefix)
    with head.name_scope():
        head.add(nn.Dense(512, activation="relu"), nn.Dropout(dropouts[0]),
                 nn.Dense(64, activation="relu"), nn.Dropout(dropouts[1]), nn.Dense(classes))
    return head


class FacialNet(nn.HybridBlock):
    """Returns `(gender_logits (N, 2), age_logits (N, 8))` for RGB 0..255 input (75x75 native)."""

    def __init__(self, gender_classes=2, age_classes=8, gray=True, batch_norm=True, **kwargs):
        super().__init__(**kwargs)
        self._gray = gray
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            for channels, kernel, stride, pad in CONVS:
                self.features.add(nn.Conv2D(channels, kernel, stride, pad, use_bias=not batch_norm))
                if batch_norm:
                    self.features.add(make_bn(channels))
                self.features.add(nn.Activation("relu"))
            self.features.add(nn.MaxPool2D(3, 2), nn.Flatten())
            self.gender = _classifier(gender_classes, GENDER_DROPOUT, "gender_")
            self.age = _classifier(age_classes, AGE_DROPOUT, "age_")

    def hybrid_forward(self, F, x):
        x = normalize(F, x)
        if self._gray:
            r, g, b = F.split(x, num_outputs=3, axis=1)
            x = r * GRAY_WEIGHTS[0] + g * GRAY_WEIGHTS[1] + b * GRAY_WEIGHTS[2]
        feat = self.features(x)
        return self.gender(feat), self.age(feat)
