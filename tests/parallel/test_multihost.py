"""A real 4-worker run of recognition/train.py across two "hosts" of a Horovod hostfile.

The hostfile names this machine twice, as `localhost` and as `127.0.0.1`: horovodrun resolves
both to a local address, so it starts all four workers without SSH, yet it plans them as two
hosts of two slots each. The workers therefore see what they would see on two real nodes:
ranks 0-3, local ranks 0-1 on each host, cross ranks 0-1, and Gloo rendezvous over TCP. The run
must shard the classifier four ways, give each rank its own slice of one order of all images
that changes every epoch, and leave all writing but each rank's own classifier shard to rank 0.
"""
import json
import os
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from recognition.data.writing.packing import pack_image_folder
from recognition.training.shared_folder import TOKEN_NAME
from tests.support import REPO
from tests.support.images import make_image_folder

SCRIPT = os.path.join(REPO, "tests", "hvd_scripts", "train_multihost.py")
WORKERS, STEPS = 4, 4
CONFIG = dict(network="r_tiny", embedding_size=16, batch_size=4, loss="cosface", margin_s=16.0,
              margin_m2=0.0, margin_m3=0.1, lr=0.05, warmup_steps=0, reference_batch_size=0,
              log_every=1, verify_every=0, save_every=STEPS, max_steps=STEPS, augment={},
              preprocess_threads=1)


@pytest.fixture(scope="module")
def multihost_run(tmp_path_factory):
    """Train STEPS steps on WORKERS workers from a two-host hostfile; returns what it left."""
    root = tmp_path_factory.mktemp("multihost")
    make_image_folder(str(root / "images"), identities=8, per_identity=4, size=(112, 112))
    pack_image_folder(str(root / "images"), str(root / "train"), progress=False, log=None,
                      pass_through=True)
    config, output, records = root / "tiny.py", root / "run", root / "records"
    config.write_text(f"config = {dict(CONFIG, rec=str(root / 'train.rec'))!r}\n")
    hostfile = root / "hosts.txt"
    hostfile.write_text("localhost slots=2\n127.0.0.1 slots=2\n")
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    cmd = [horovodrun, "-np", str(WORKERS), "-hostfile", str(hostfile), "--gloo",
           sys.executable, SCRIPT, str(records), str(config), "--output", str(output)]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    if proc.returncode != 0:
        pytest.fail(f"horovodrun exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
                    f"stderr:\n{proc.stderr[-4000:]}")
    ranks = [json.loads((records / f"rank{r}.json").read_text()) for r in range(WORKERS)]
    return root, output, ranks, proc.stdout


def test_two_hosts_of_two_slots(multihost_run):
    _, _, ranks, _ = multihost_run
    layout = [(r["rank"], r["size"], r["host"], r["local_rank"], r["local_size"],
               r["cross_rank"], r["cross_size"], r["exit"]) for r in ranks]
    assert layout == [(0, 4, "localhost", 0, 2, 0, 2, 0), (1, 4, "localhost", 1, 2, 0, 2, 0),
                      (2, 4, "127.0.0.1", 0, 2, 1, 2, 0), (3, 4, "127.0.0.1", 1, 2, 1, 2, 0)]


def test_four_classifier_shards_and_a_pointer_at_the_last_step(multihost_run):
    _, output, _, _ = multihost_run
    names = set(os.listdir(output))
    assert {f"fc-{STEPS}-rank{r}of{WORKERS}.params" for r in range(WORKERS)} <= names
    assert json.loads((output / "checkpoint.json").read_text()) == {"step": STEPS,
                                                                    "world_size": WORKERS}
    assert {f"model-{STEPS:04d}.params", "model-symbol.json", f"trainer-{STEPS}.states",
            f"state-{STEPS}.json"} <= names


def test_only_rank_0_writes_the_model_and_the_log(multihost_run):
    _, output, ranks, stdout = multihost_run
    shard = "fc-{}-rank{}of{}.params"
    assert ranks[0]["moved"] and set(ranks[0]["moved"]) == {
        shard.format(STEPS, 0, WORKERS), "model-symbol.json", f"model-{STEPS:04d}.params",
        f"trainer-{STEPS}.states", f"state-{STEPS}.json", "checkpoint.json",
        TOKEN_NAME}  # the token every rank reads back: the folder is shared
    for r in range(1, WORKERS):  # every other rank writes its own shard and nothing else
        assert ranks[r]["moved"] == [shard.format(STEPS, r, WORKERS)]
    log = (output / "train.log").read_text()
    assert log.count(f"done at step {STEPS}") == 1 and log.count("4 worker(s)") == 1
    assert len(re.findall(r"step \d+/\d+ ", log)) == STEPS  # log_every=1: one line per step
    logged = [line for line in stdout.splitlines() if re.search(r"\d\d:\d\d:\d\d step \d", line)]
    assert logged and all(line.startswith("[0]") for line in logged)


def _labels_in_file_order(rec, index):
    """Identity of every image, in key order, read by stock MXNet."""
    record = mx.recordio.MXIndexedRecordIO(index, rec, "r")
    labels = [int(mx.recordio.unpack(record.read_idx(k))[0].label) for k in sorted(record.keys)]
    record.close()
    return np.array(labels)


def test_each_rank_reads_its_slice_of_one_order_per_epoch(multihost_run):
    """Rank r trains on positions r*8..r*8+7 of the permutation of all 32 images drawn from
    (seed 0, epoch): epoch 0, then epoch 1; the ranks' slices of an epoch are disjoint, and
    each rank sees more identities than the 2 a contiguous part of the file holds."""
    root, _, ranks, _ = multihost_run
    labels = _labels_in_file_order(str(root / "train.rec"), str(root / "train.idx"))
    n, per_rank = len(labels), len(labels) // WORKERS
    slices = {}
    for r, info in enumerate(ranks):
        assert info["part"] == [r, WORKERS]
        assert len(info["sums"]) == STEPS
        order = [np.random.default_rng([0, epoch, 0]).permutation(n) for epoch in (0, 1)]
        slices[r] = order[0][r * per_rank:(r + 1) * per_rank]
        expected = np.concatenate([o[r * per_rank:(r + 1) * per_rank] for o in order])
        assert info["labels"] == labels[expected].tolist()
        assert len(set(info["labels"][:per_rank])) > 2
    assert sorted(np.concatenate(list(slices.values())).tolist()) == list(range(n))
    firsts = [{round(v, 1) for v in info["sums"][0]} for info in ranks]
    for a in range(WORKERS):  # no image is in the first batch of two ranks
        for b in range(a + 1, WORKERS):
            assert not firsts[a] & firsts[b]


@pytest.mark.parametrize("mode", ["same", "local"])
def test_a_run_folder_that_is_not_shared_stops_every_rank(run_horovod, tmp_path, mode):
    """Two folders stand for two hosts' local disks: rank 1 does not see the token rank 0
    wrote, and both ranks stop naming the host that does not share the folder."""
    script = os.path.join(REPO, "tests", "hvd_scripts", "shared_folder.py")
    run_horovod([script, str(tmp_path), mode])
    results = [open(tmp_path / f"result{rank}.txt").read() for rank in (0, 1)]
    if mode == "same":
        assert results == ["ok", "ok"]
        return
    assert all("is not shared by every worker" in r for r in results)
    assert "rank(s) [1] on other hosts do not see it" in results[0]
    assert "this worker (rank 1, host node1) does not see it" in results[1]
