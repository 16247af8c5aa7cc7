"""Every `tools/*.py`: the same thin wrapper, runs from any folder without the package installed,
`--help` exits 0 and bad input ends in `error: ...` with exit status 2 (no traceback)."""
import ast
import os
import subprocess
import sys

import pytest

from tests.support import REPO

TOOLS = os.path.join(REPO, "tools")
WRAPPER = '''#!/usr/bin/env python
"""{doc}"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from {module} import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
'''

# per tool, and `tool.py what` for more cases: arguments naming inputs that do not exist (or a
# bad value where a tool reads none); `{tmp}/junk.onnx` holds text
BAD_INPUT = {
    "plot_run.py": ["{tmp}/no_run", "-o", "{tmp}/out.png"],
    "preview.py": ["{tmp}/none.rec", "-o", "{tmp}/out.png"],
    "align.py": ["{tmp}/no_src", "{tmp}/dst", "--landmarks", "{tmp}/none.tsv"],
    "eval_attributes.py": ["--model", "{tmp}/none,1", "--rec", "{tmp}/none.rec"],
    "export_onnx.py": ["{tmp}/none,1", "{tmp}/out.onnx"],
    "im2rec.py": ["{tmp}/out", "{tmp}/no_such_folder"],
    "plan.py": ["--classes", "0"],
    "rec_check.py": ["{tmp}/none.rec"],
    "rec_convert.py": ["{tmp}/none.rec", "{tmp}/out.rec", "--layout", "plain"],
    "shards.py": ["info", "{tmp}/none.params"],
    "summary.py": ["no_such_backbone"],
    "verify.py": ["--data-dir", "{tmp}", "--model", "{tmp}/none,1", "--target", "lfw"],
    # ijbb: its files are read after the models load, so the model is what fails
    "verify.py missing .onnx": ["--data-dir", "{tmp}", "--model", "{tmp}/none.onnx",
                                "--target", "ijbb"],
    "verify.py text as .onnx": ["--data-dir", "{tmp}", "--model", "{tmp}/junk.onnx",
                                "--target", "ijbb"],
}
TOOL_NAMES = sorted(name for name in os.listdir(TOOLS) if name.endswith(".py"))

# Runs a tool as `python tools/X.py` does, with the repository (where `pip install -e` puts it)
# taken off sys.path: the wrapper alone must make the package importable.
RUN_UNINSTALLED = """
import runpy, sys
repo, tool = sys.argv[1], sys.argv[2]
sys.path[:] = [p for p in sys.path if p not in ("", ".", repo)]
sys.argv = sys.argv[2:]
runpy.run_path(tool, run_name="__main__")
"""


def run_tool(name, args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", RUN_UNINSTALLED, REPO,
                           os.path.join(TOOLS, name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_every_tool_is_listed():
    assert sorted({case.split()[0] for case in BAD_INPUT}) == TOOL_NAMES


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_tool_is_the_thin_wrapper(name):
    source = open(os.path.join(TOOLS, name)).read()
    tree = ast.parse(source)
    module = next(node.module for node in tree.body if isinstance(node, ast.ImportFrom))
    assert source == WRAPPER.format(doc=ast.get_docstring(tree, clean=False), module=module)
    assert os.access(os.path.join(TOOLS, name), os.X_OK)


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_help_from_another_folder(name, tmp_path):
    proc = run_tool(name, ["--help"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("usage:")


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_error_and_exit_2(case, tmp_path):
    (tmp_path / "junk.onnx").write_text("not an ONNX model")
    args = [arg.format(tmp=tmp_path) for arg in BAD_INPUT[case]]
    proc = run_tool(case.split()[0], args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
