"""Every command in README.md's ```bash blocks runs, so a documented command or flag cannot rot.

The README is read when the tests are collected: each ```bash block is parsed (backslash
continuations joined, `#` comments dropped, `;` and `&&` split into separate commands) and every
command gets a test `test_readme_command[README.md:LINE]`. A module fixture runs them all once,
in README order, in a sandbox laid out like a user's working copy
(tests/support/readme_fixtures.py), so earlier commands create what later ones read (the
synthetic data, then the training runs, then the verification and export of their checkpoints).

Commands are run by bash, as typed, with these changes only:
  * `python` and `horovodrun` are this interpreter (sys.executable) and its Horovod, as in an
    activated .venv; every command gets OMP_NUM_THREADS=1 and PYTHONPATH=<repo>;
  * TINY: per program, options appended to make the run tiny (argparse and the training config
    both let the last occurrence win);
  * SUBSTITUTIONS: a short table of exact text replacements (GPU -> CPU, checkpoint epochs a
    tiny run cannot reach).
A command the harness cannot run (an unknown program, a placeholder such as `...` or
`/path/to/x`, an absolute path outside the working copy, a shell pipe or redirection) fails its
test naming the README line and the reason; nothing is skipped silently. The only commands not
run are listed in NOT_RUN, and for those the Makefile target must exist.
"""
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from tests.support import REPO
from tests.support.readme_fixtures import build_working_copy

README = os.path.join(REPO, "README.md")
MAKEFILE = os.path.join(REPO, "Makefile")

# The only README commands not executed: `make test` runs this very suite, `make demo` is the
# 15-minute end-to-end job. The test checks their Makefile targets exist instead.
NOT_RUN = {"make demo": "demo", "make test": "test"}

# Appended to a command by the program it runs (last occurrence wins in both parsers).
TRAIN_TINY = ["--max_steps", "2", "--batch_size", "4", "--save_every", "2", "--verify_every", "2",
              "--log_every", "1", "--preprocess_threads", "1"]
TINY = {
    "recognition/train.py": TRAIN_TINY,
    "recognition.synthetic": ["--identities", "4", "--images-per-identity", "4",
                                   "--verify-identities", "20", "--pairs", "20", "--workers", "1"],
}
# `--resume true` continues the previous tiny run: two more steps than TRAIN_TINY's.
RESUME_TINY = ["--max_steps", "4"]
# A training example that swaps in a full-size backbone (`--network NAME`) trains it on smaller
# images: IResNet-18's verification pass alone takes ~25 s at 112x112 on 2 CPU cores.
NETWORK_TINY = {"r18": ["--image_size", "32,32"]}

# Exact text replacements, applied to every command (README text -> what runs).
SUBSTITUTIONS = [
    # no GPU here: GPU 0 -> the CPU (`--gpu -1` is the CPU for tools/verify.py and friends)
    ("--gpu 0", "--gpu -1"),
    # the demo's best checkpoint at step 2000; the tiny horovodrun run that last trains
    # work_dirs/synthetic (2 steps, verified at step 2) leaves best-0002
    ("work_dirs/synthetic/best,2000", "work_dirs/synthetic/best,2"),
]

# A trailing comment saying so marks a command that is expected to exit non-zero.
EXPECT_FAILURE = re.compile(r"\b(fails|error)\b", re.IGNORECASE)
PLACEHOLDERS = [(re.compile(r"^\.\.\.$|^<[^>]*>$"), "is a placeholder"),
                (re.compile(r"/path/to\b"), "is a placeholder path"),
                (re.compile(r"^/"), "is an absolute path outside the working copy")]
COMMAND_TIMEOUT = 300


class Command:
    """One README command: where it is, its text, and what the harness makes of it."""

    def __init__(self, line, text, comment=""):
        self.line, self.text, self.comment = line, text.strip(), comment.strip()
        self.problem = None      # why the harness cannot run it
        self.make_target = None  # NOT_RUN: the Makefile target to check instead
        self.run_text = None     # what bash runs
        self.expect_failure = bool(EXPECT_FAILURE.search(self.comment))

    @property
    def where(self):
        return f"README.md:{self.line}"

    def __repr__(self):
        return f"{self.where}: {self.text}"


# ---------------------------------------------------------------------------------- parsing
def bash_blocks(path=README):
    """`[(line of the first command line, [lines], closed)]` of every ```bash fence."""
    blocks, current, start = [], None, 0
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            stripped = line.strip()
            if current is None:
                if re.fullmatch(r"```\s*bash", stripped):
                    current, start = [], number + 1
            elif stripped.startswith("```"):
                blocks.append((start, current, True))
                current = None
            else:
                current.append(line.rstrip("\n"))
    if current is not None:
        blocks.append((start, current, False))
    return blocks


def logical_lines(start, lines):
    """Join backslash continuations: `[(first line number, text)]`."""
    out, pending, first = [], None, start
    for offset, line in enumerate(lines):
        if pending is None:
            pending, first = "", start + offset
        if line.endswith("\\") and not _in_comment(pending + line):
            pending += line[:-1] + " "
            continue
        out.append((first, pending + line))
        pending = None
    if pending is not None:
        out.append((first, pending))
    return out


def _in_comment(text):
    return _scan(text)[1] is not None


def _scan(text):
    """Split `text` on unquoted `;` / `&&` and cut an unquoted `#` comment:
    `([pieces], comment or None)`."""
    pieces, current, quote, i = [], "", None, 0
    while i < len(text):
        c = text[i]
        if quote:
            current += c
            if c == "\\" and quote == '"' and i + 1 < len(text):
                current += text[i + 1]
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
            current += c
        elif c == "\\" and i + 1 < len(text):
            current += text[i:i + 2]
            i += 1
        elif c == "#" and (not current or current[-1].isspace()):
            pieces.append(current)
            return pieces, text[i + 1:]
        elif c == ";":
            pieces.append(current)
            current = ""
        elif text.startswith("&&", i):
            pieces.append(current)
            current = ""
            i += 1
        else:
            current += c
        i += 1
    pieces.append(current)
    return pieces, None


def parse_readme(path=README):
    """Every command of every ```bash block of README.md, in order, classified."""
    commands = []
    for start, lines, closed in bash_blocks(path):
        if not closed:
            cmd = Command(start - 1, "```bash")
            cmd.problem = "this ```bash block is never closed"
            commands.append(cmd)
            continue
        for line, text in logical_lines(start, lines):
            pieces, comment = _scan(text)
            pieces = [p for p in pieces if p.strip()]
            for piece in pieces:
                cmd = Command(line, piece, comment or "")
                classify(cmd)
                commands.append(cmd)
    return commands


def classify(cmd):
    """Set cmd.problem, cmd.make_target or cmd.run_text."""
    try:
        words = shlex.split(cmd.text)
    except ValueError as exc:
        cmd.problem = f"cannot be split into words ({exc})"
        return
    normal = " ".join(words)
    if normal in NOT_RUN:
        cmd.make_target = NOT_RUN[normal]
        return
    lexer = shlex.shlex(cmd.text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    operators = [token for token in lexer if set(token) <= set("();<>|&")]
    if operators:
        cmd.problem = (f"uses the shell operator {operators[0]!r}; the harness runs single "
                       f"commands (split it, or teach tests/test_readme_commands.py)")
        return
    for word in words:
        for pattern, why in PLACEHOLDERS:
            if pattern.search(word):
                cmd.problem = (f"{word!r} {why}: write a concrete relative path (and give it a "
                               f"fixture in tests/support/readme_fixtures.py)")
                return
    program = _program(words)
    if program is None:
        cmd.problem = (f"no rule to run {words[0]!r} (the harness runs `python ...` and "
                       f"`horovodrun ... python ...`; `make demo`/`make test` are checked)")
        return
    text = cmd.text
    for old, new in SUBSTITUTIONS:
        text = text.replace(old, new)
    extra = [] if ("--help" in words or "-h" in words) else list(TINY.get(program, []))
    if program == "recognition/train.py" and extra:
        if _option(words, "--resume", "false").lower() in ("true", "1", "yes"):
            extra += RESUME_TINY
        extra += NETWORK_TINY.get(_option(words, "--network"), [])
    cmd.run_text = " ".join([text] + [shlex.quote(a) for a in extra])


def _program(words):
    """The script or `-m` module a `python` / `horovodrun ... python` command runs."""
    if words[0] == "horovodrun":
        if "--gloo" not in words or "python" not in words:
            return None
        words = words[words.index("python"):]
    if words[0] != "python" or len(words) < 2:
        return None
    if words[1] == "-m":
        return words[2] if len(words) > 2 else None
    return os.path.normpath(words[1])


def _option(words, name, default=None):
    """The value of `--name value` / `--name=value` in `words` (the last one), or `default`."""
    value = default
    for i, word in enumerate(words):
        if word.startswith(name + "="):
            value = word.partition("=")[2]
        elif word == name and i + 1 < len(words):
            value = words[i + 1]
    return value


COMMANDS = parse_readme()


# -------------------------------------------------------------------------------- running
def _shims(folder):
    """`python` and `horovodrun` on PATH are this interpreter's (an activated venv)."""
    os.makedirs(folder)
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    # scripts, not links: a link to the venv's python outside the venv loses the venv
    for name, target in (("python", [sys.executable]),
                         ("horovodrun", [sys.executable, horovodrun])):
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nexec {' '.join(shlex.quote(t) for t in target)} \"$@\"\n")
        os.chmod(path, 0o755)
    return folder


def _tail(text, n=3000):
    return text if len(text) <= n else "...\n" + text[-n:]


def _run(command, cwd, env):
    """`(exit status, stdout, stderr)` of `bash -c command`; on timeout its whole process group
    (horovodrun's workers too) is killed and the status says so."""
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=COMMAND_TIMEOUT)
        return proc.returncode, stdout, stderr
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        return f"none: killed after {COMMAND_TIMEOUT} s", stdout, stderr


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every runnable README command once, in order: `{index: failure message or None}`."""
    base = tmp_path_factory.mktemp("readme")
    workdir = base / "checkout"
    workdir.mkdir()
    build_working_copy(workdir, base / "scratch")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO, MPLBACKEND="Agg",
               PATH=_shims(str(base / "bin")) + os.pathsep + os.environ.get("PATH", ""))
    out, timings = {}, []
    for index, cmd in enumerate(COMMANDS):
        if cmd.run_text is None:
            continue
        start = time.time()
        rc, stdout, stderr = _run(cmd.run_text, workdir, env)
        timings.append((time.time() - start, cmd.where))
        ok = (rc != 0 if cmd.expect_failure else rc == 0) and isinstance(rc, int)
        out[index] = None if ok else (
            f"{cmd.where}: `{cmd.text}`\n  ran in {workdir}: {cmd.run_text}\n"
            f"  exit status {rc} (expected {'non-zero' if cmd.expect_failure else '0'})\n"
            f"--- stdout ---\n{_tail(stdout)}\n--- stderr ---\n{_tail(stderr)}")
    print("\nREADME command timings: " + ", ".join(f"{w} {t:.1f}s" for t, w in timings))
    return out


def test_readme_has_the_commands_it_documents():
    programs = {_program(shlex.split(c.text)) for c in COMMANDS if c.run_text}
    assert {"recognition/train.py", "tools/verify.py", "tools/im2rec.py"} <= programs, programs
    assert any(c.text.startswith("horovodrun") for c in COMMANDS)


def test_exceptions_are_still_in_the_readme():
    """NOT_RUN stays the short list of README commands not run (no stale entries)."""
    found = {" ".join(shlex.split(c.text)) for c in COMMANDS if c.make_target}
    assert found == set(NOT_RUN), f"NOT_RUN lists commands the README no longer has: " \
                                  f"{sorted(set(NOT_RUN) - found)}"


@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=[c.where for c in COMMANDS])
def test_readme_command(index, results):
    cmd = COMMANDS[index]
    if cmd.problem:
        pytest.fail(f"{cmd.where}: `{cmd.text}` cannot be run by the harness: {cmd.problem}",
                    pytrace=False)
    if cmd.make_target:
        with open(MAKEFILE) as f:
            targets = re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", f.read(), re.MULTILINE)
        assert cmd.make_target in targets, \
            f"{cmd.where}: `{cmd.text}` but the Makefile has no target {cmd.make_target!r}"
        return
    if results[index]:
        pytest.fail(results[index], pytrace=False)


def test_parser_rules(tmp_path):
    """The harness's own rules on a made-up README: continuations, comments, `&&`, and a clear
    reason for each command it cannot run."""
    readme = tmp_path / "README.md"
    readme.write_text("\n".join([
        "text", "```bash",
        "python tools/verify.py --data-dir data/x \\",
        "    --gpu 0   # a comment with a \\",
        "# a whole-line comment",
        "make demo   # not run",
        "python tools/a.py && python tools/b.py --model 'x|y'",
        "python recognition/train.py configs/synthetic.py --resume true --network r18",
        "python tools/verify.py --model ...",
        "python tools/im2rec.py out /path/to/faces",
        "python tools/verify.py --data-dir /data/IJB",
        "python tools/verify.py | tee log",
        "bash run.sh",
        "python tools/verify.py --bad   # fails: unknown flag",
        "```", "```python", "not a command", "```", "```bash", "python tools/x.py",
    ]) + "\n")
    cmds = parse_readme(str(readme))
    got = [(c.line, c.run_text or c.make_target or c.problem) for c in cmds]
    assert got[0] == (3, "python tools/verify.py --data-dir data/x      --gpu -1")
    assert got[1] == (6, "demo")
    assert got[2:4] == [(7, "python tools/a.py"), (7, "python tools/b.py --model 'x|y'")]
    train = got[4][1].split()
    assert got[4][0] == 8 and train[-4:] == ["--max_steps", "4", "--image_size", "32,32"]
    assert train[:6] == ["python", "recognition/train.py", "configs/synthetic.py", "--resume",
                         "true", "--network"] and "--verify_every" in train
    problems = dict(got[5:10])
    assert "'...' is a placeholder" in problems[9]
    assert "placeholder path" in problems[10]
    assert "absolute path outside the working copy" in problems[11]
    assert "shell operator '|'" in problems[12]
    assert "no rule to run 'bash'" in problems[13]
    assert cmds[10].expect_failure and not cmds[0].expect_failure
    assert got[-1] == (19, "this ```bash block is never closed")
