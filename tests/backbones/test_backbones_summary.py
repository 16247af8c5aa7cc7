"""`face-summary`: FLOP counting against hand-computed numbers, and the CLI's behaviour."""
import pytest
from mxnet.gluon import nn

from recognition.backbones import get_model
from recognition.backbones.summary import count_macs, summarize
from recognition.commands.summary import main, parse_options


class _Tiny(nn.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = nn.Conv2D(8, 3, 2, 1)
            self.dw = nn.Conv2D(8, 3, 1, 1, groups=8)
            self.fc = nn.Dense(5)

    def hybrid_forward(self, F, x):
        return self.fc(self.dw(self.conv(x)))


def test_macs_of_a_hand_built_net():
    # conv: 5x5 output (10 -> 5 at stride 2), 8 filters, 3 inputs x 3x3 each
    # depthwise: 5x5x8 outputs, 1 input x 3x3 each; fc: 5 x (8*5*5) per image; batch 2
    expected = 2 * (5 * 5 * 8 * 3 * 9 + 5 * 5 * 8 * 9 + 5 * 200)
    assert count_macs(_Tiny(), (2, 3, 10, 10)) == expected


@pytest.mark.parametrize("name,paper_gflops,tolerance", [("r50", 6.33, 0.01),
                                                         ("effb3", 0.274, 0.03)])
def test_flops_are_close_to_ponce_report(name, paper_gflops, tolerance):
    """Ponce counts elementwise layers too; conv + FC alone are within 1% (r50), 3% (B3)."""
    macs = count_macs(get_model(name), (1, 3, 112, 112))
    assert abs(macs / 1e9 / paper_gflops - 1) < tolerance


def test_summarize_reports_everything():
    s = summarize("mbv2")
    assert s.input_size == 112 and s.output_shapes == [(1, 128)]
    assert 150_000 < s.trainable < s.total and s.macs > 0
    assert s.total * 4 < s.export_bytes < s.total * 4 + 200_000  # weights + names + JSON


def test_cli_prints_a_markdown_row(capsys):
    assert main(["facialnet", "--set", "batch_norm=False"]) == 0
    out = capsys.readouterr().out
    assert "| facialnet | 75 |" in out and "1x2 + 1x8" in out


def test_cli_rejects_unknown_names(capsys):
    assert main(["r50", "nope"]) == 2
    captured = capsys.readouterr()
    assert "error: unknown backbone 'nope'" in captured.err and captured.out == ""
    assert main([]) == 2


def test_parse_options():
    assert parse_options(["act=prelu", "trsf=True", "width=0.5"]) == {
        "act": "prelu", "trsf": True, "width": 0.5}
    with pytest.raises(ValueError):
        parse_options(["noequals"])


def test_macs_grow_with_input_area():
    small = count_macs(get_model("r_tiny"), (1, 3, 56, 56))
    big = count_macs(get_model("r_tiny"), (1, 3, 112, 112))
    assert 3.0 < big / small < 4.5  # conv cost scales with area; the FC input also grows


def test_cli_lists_the_registry(capsys):  # tools/summary.py itself: commands/test_tools_cli.py
    assert main(["--list"]) == 0
    assert "incres_v2" in capsys.readouterr().out.split()
