"""`python -m recognition.synthetic ...`: the `face-synth` command (`recognition.commands.synth`).

Run, not imported, so the command line stays out of this package's imports."""
import runpy

runpy.run_module("recognition.commands.synth", run_name="__main__", alter_sys=True)
