"""`recognition/train.py` from the command line: `--help`, `--print-config`, clear errors for
bad values, and the documented `prefix,epoch` flags (training, then resuming)."""
import os
import subprocess
import sys

import pytest

from recognition.config import describe_keys
from tests.support import REPO
from tests.support.tiny_faces import tiny_faces

TRAIN = os.path.join(REPO, "recognition", "train.py")
SYNTHETIC = os.path.join(REPO, "configs", "synthetic.py")


def train(*args, check=True):
    proc = subprocess.run([sys.executable, TRAIN, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    if check and proc.returncode != 0:
        pytest.fail(f"train.py {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def test_help_lists_every_key_with_its_meaning():
    out = train("--help").stdout
    for key, default, text in describe_keys():
        assert f"--{key} {default!r}" in out
    assert "margin preset: softmax | sphereface" in out and "--print-config" in out
    assert [k for k, _, text in describe_keys() if not text] == []  # every key documented


def test_print_config_shows_the_effective_loss():
    out = train(os.path.join(REPO, "configs", "ms1mv2_r50_softmax.py"), "--print-config").stdout
    assert out.startswith("# loss: softmax s=64 m1=1 m2=0 m3=0\n")
    assert "margin_m2 = 0.0" in out and "loss = 'softmax'" in out


@pytest.mark.parametrize("args, message", [
    (["--batch_size", "0"], "error: key 'batch_size' must be an integer >= 1, got 0"),
    (["--batch_size", "-8"], "error: key 'batch_size' must be an integer >= 1, got -8"),
    (["--image_size", "0,0"], "error: key 'image_size' must be [height, width]"),
    (["--lr", "-0.1"], "error: key 'lr' must be > 0, got -0.1"),
    (["--network", "r51"], "error: unknown backbone 'r51'; valid:"),
    (["--pretrained", "model-0003.params"], "error: pretrained must be 'prefix,epoch'"),
])
def test_bad_values_are_one_line_errors(args, message):
    proc = train(SYNTHETIC, "--rec", os.path.join(REPO, "tests", "no.rec"), *args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_config_file_with_a_syntax_error_is_named(tmp_path):
    bad = tmp_path / "mine.py"
    bad.write_text('BASE = "synthetic.py"\nconfig = dict(lr=0.1,\n')
    proc = train(str(bad), check=False)
    assert proc.returncode == 2 and f"error: {bad}:2: syntax error" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


# Runs `face-train`'s `main` or the script as `horovodrun` does, and prints OMP_NUM_THREADS as
# it was when `mxnet` was first imported.
AT_MXNET_IMPORT = """
import importlib.abc, os, runpy, sys
seen = []


class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "mxnet" and not seen:
            seen.append(os.environ.get("OMP_NUM_THREADS"))


sys.meta_path.insert(0, Watch())
entry, sys.argv = sys.argv[1], sys.argv[1:]
try:
    if entry == "face-train":
        from recognition.commands.train import main
        code = main(sys.argv[1:])
    else:
        runpy.run_path(entry, run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("seen", seen, "exit", code)
"""


@pytest.mark.parametrize("entry", ["face-train", TRAIN])
def test_threads_are_set_before_mxnet_loads(entry):
    """Both entries set each worker's OpenMP threads before anything imports MXNet, which
    reads them once, when it loads (`commands.train.start`)."""
    from recognition.parallel.threads import choose, usable_cores

    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS")}
    env["HOROVOD_LOCAL_SIZE"] = "2"
    proc = subprocess.run([sys.executable, "-c", AT_MXNET_IMPORT, entry, SYNTHETIC,
                           "--print-config"], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=300)
    want = choose(usable_cores(), 2)["OMP_NUM_THREADS"]
    assert proc.stdout.splitlines()[-1] == f"seen [{want!r}] exit 0", proc.stderr[-3000:]


@pytest.fixture(scope="module")
def tiny_rec(tmp_path_factory):
    return tiny_faces(str(tmp_path_factory.mktemp("cli")), seed=4)


def test_prefix_epoch_flags_work_from_the_command_line_and_resume(tiny_rec, tmp_path):
    """`--pretrained prefix,N` and `--network_checkpoint prefix,N` as README shows them, then
    `--resume true` on the network_checkpoint run."""
    common = ["--rec", os.path.join(tiny_rec, "train.rec"), "--val_data_dir", tiny_rec,
              "--batch_size", "4", "--verify_every", "0", "--log_every", "1",
              "--preprocess_threads", "1", "--embedding_size", "32"]
    first = str(tmp_path / "first")
    train(SYNTHETIC, *common, "--max_steps", "2", "--save_every", "2", "--output", first)
    tuned = train(SYNTHETIC, *common, "--max_steps", "2", "--output", str(tmp_path / "tuned"),
                  "--pretrained", os.path.join(first, "model") + ",2").stdout
    assert f"fine-tuning from {os.path.join(first, 'model-0002.params')}" in tuned
    cut = str(tmp_path / "cut")
    train(SYNTHETIC, *common, "--max_steps", "2", "--save_every", "2", "--output", cut,
          "--network_checkpoint", os.path.join(first, "model") + ",2")
    resumed = train(SYNTHETIC, *common, "--max_steps", "4", "--save_every", "2", "--output", cut,
                    "--network_checkpoint", os.path.join(first, "model") + ",2",
                    "--resume", "true").stdout
    assert "resumed from step 2" in resumed and "done at step 4" in resumed


def test_an_argument_the_backbone_does_not_take_is_named(tiny_rec):
    proc = train(SYNTHETIC, "--rec", os.path.join(tiny_rec, "train.rec"), "--batch_size", "4",
                 "--network_kwargs",
                 "{'actt': 'prelu'}", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "error: network 'r_tiny' with network_kwargs {'actt': 'prelu'" in proc.stderr
