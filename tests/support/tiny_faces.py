"""Tiny rendered face sets for training tests: generated, packed, and a config file."""
import os

from recognition.data.writing.packing import pack_image_folder
from recognition.synthetic.generate import attribute_labels, generate


def tiny_faces(out, identities=4, per_identity=4, seed=0, attributes=False):
    """Render `identities` x `per_identity` faces into `out` and pack `out/train.rec`
    (labels `[identity, gender, age group]` with `attributes`); returns `out`."""
    generate(out, num_identities=identities, images_per_identity=per_identity,
             num_verify_identities=20, num_pairs=40, seed=seed, workers=1)
    labels = attribute_labels(os.path.join(out, "attributes.tsv")) if attributes else None
    pack_image_folder(os.path.join(out, "images"), os.path.join(out, "train"), progress=False,
                      log=None, pass_through=not attributes, extra_labels=labels)
    return out


def write_config(out, keys):
    """`out/tiny.py` holding `keys`, reading `out/train.rec` and verifying on `out`."""
    path = os.path.join(out, "tiny.py")
    with open(path, "w") as f:
        f.write(f"config = {dict(keys, rec=os.path.join(out, 'train.rec'), val_data_dir=out)!r}\n")
    return path
