"""Synthetic faces, the embedded default dataset: identities (`identity`), per-image variation
presets (`nuisance`), drawing (`render`) and the dataset writer (`generate`).

`python -m recognition.synthetic` is the `face-synth` command (`recognition.commands.synth`)."""
