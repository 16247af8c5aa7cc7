"""The installed environment: pinned versions and a real two-worker Horovod all-reduce."""
import textwrap

import mxnet as mx
import numpy as np


def test_pinned_versions():
    assert np.__version__ == "1.23.5"
    assert mx.__version__ == "1.9.1"


def test_horovodrun_allreduce_sums_two_ranks(run_horovod, tmp_path):
    script = tmp_path / "allreduce.py"
    script.write_text(textwrap.dedent("""
        import horovod.mxnet as hvd
        import mxnet as mx
        hvd.init()
        total = hvd.allreduce(mx.nd.array([hvd.rank() + 1.0, 10.0]), average=False, name="x")
        print(f"rank={hvd.rank()} size={hvd.size()} total={total.asnumpy().tolist()}")
    """))
    out = run_horovod([str(script)], np=2).stdout
    assert "rank=0 size=2 total=[3.0, 20.0]" in out
    assert "rank=1 size=2 total=[3.0, 20.0]" in out
