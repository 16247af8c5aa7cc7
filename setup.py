"""Install the `recognition` package: face-embedding training on MXNet/Gluon with Horovod.

Horovod is not listed here: it must be compiled against the installed MXNet with special
flags, which pip cannot express. `make install` (used by `make demo` / `make test`) builds it.

MXNet is not in install_requires either: the CPU wheel (`mxnet`) and the CUDA wheel
(`mxnet-cu112`) install the same `mxnet` package, so requiring one would pull it back over the
other. Pick one with an extra: `pip install -e ".[cpu]"` or `".[cu112]"` (`make install` or
`make install GPU=cu112` does this).
"""
from setuptools import find_packages, setup

setup(
    name="recognition",
    version="0.1.0",
    description="Face recognition training toolkit on MXNet/Gluon: sharded ArcFace FC over Horovod",
    packages=find_packages(include=["recognition", "recognition.*"]),
    python_requires=">=3.9",
    install_requires=[
        "numpy==1.23.5",
        "opencv-python-headless<4.12",
        "gluoncv==0.10.5.post0",
        "scikit-learn",
        "easydict",
        "tqdm",
        "matplotlib",
    ],
    extras_require={
        "cpu": ["mxnet==1.9.1"],
        "cu112": ["mxnet-cu112==1.9.1"],
        "gpu": ["mxnet-cu112==1.9.1"],  # the older name of cu112
        "export": ["onnx==1.16.2", "onnxruntime==1.19.2", "protobuf==4.25.9"],
        "tensorboard": ["tensorboardX==2.6.2.2", "protobuf==4.25.9"],
        "test": ["pytest", "scikit-image==0.24.0"],  # skimage: reference for the alignment
    },
    entry_points={
        "console_scripts": [
            "face-train=recognition.commands.train:main",  # = python recognition/train.py
            "face-im2rec=recognition.commands.im2rec:main",
            "face-align=recognition.commands.align:main",
            "face-rec-check=recognition.commands.rec_check:main",
            "face-rec-convert=recognition.commands.rec_convert:main",
            "face-synth=recognition.commands.synth:main",
            "face-summary=recognition.commands.summary:main",
            "face-verify=recognition.commands.verify:main",
            "face-eval-attributes=recognition.commands.eval_attributes:main",
            "face-export-onnx=recognition.commands.export_onnx:main",
            "face-shards=recognition.commands.shards:main",
            "face-plan=recognition.commands.plan:main",
            "face-preview=recognition.commands.preview:main",
            "face-plot-run=recognition.commands.plot_run:main",
            "face-demo=recognition.commands.demo:main",
        ],
    },
)
