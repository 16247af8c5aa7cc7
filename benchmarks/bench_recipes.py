"""Held-out accuracy against wall-clock minutes, per recipe, on three synthetic face sets.

    python benchmarks/bench_recipes.py --set aligned [--recipes demo small_cpu]
                                       [--cap demo=1200] [--data /tmp/bench_recipes]
                                       [--plot docs/recipes_aligned.png]

Sets (`--set`):
- `aligned`: a second set sized like a user's own folder (300 identities x 30 images, 6,000
  held-out pairs of 200 other identities), seed 7, the demo's `aligned` nuisance;
- `wild`: the same size and seed with the `wild` nuisance (more pose, looser crops, more
  occluders, harsher capture);
- `demo`: the demo's own set (500 x 40, seed 0), the only one a recipe was tuned on.
All three are packed the way README tells users to (`tools/im2rec.py --list --recursive`,
then `--layout insightface`, re-encoding at quality 95); `make demo` stores its JPEGs as they
are in the plain layout, so `--set demo` may score a little differently from `make demo`.

Each recipe trains with the command README gives for it, saving a checkpoint every few hundred
steps and verifying nothing in the loop; afterwards every checkpoint is scored with
`tools/verify.py` on the held-out pairs. A checkpoint's minutes are counted from the launch of
the training command (start-up, data checks and saving included). `--cap NAME=STEPS` stops a
step-schedule recipe early: its lr at a step does not depend on `max_steps`, so the capped
curve is the uncapped one cut short (refused for poly and cosine, whose decay does). Prints a
table, adds to `results.json` under the set's folder (so recipes can be run one at a time) and
draws every recipe there into `--plot`.
"""
import argparse
import calendar
import json
import os
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.common import machine  # noqa: E402
from recognition.config import load_config  # noqa: E402
from recognition.parallel.launch import local_workers_command  # noqa: E402

USER_SIZED = dict(identities=300, images_per_identity=30, verify_identities=200, pairs=6000,
                  seed=7)
SETS = {
    "aligned": dict(USER_SIZED, nuisance="aligned"),
    "wild": dict(USER_SIZED, nuisance="wild"),
    "demo": dict(identities=500, images_per_identity=40, verify_identities=200, pairs=6000,
                 seed=0, nuisance="aligned"),
}
TITLES = {
    "aligned": "Second synthetic set (aligned, seed 7, 300 x 30 training images, 6,000 "
               "held-out pairs)",
    "wild": "Synthetic 'wild' set (seed 7, 300 x 30 training images, 6,000 held-out pairs)",
    "demo": "The demo's set (seed 0, 500 x 40 training images, 6,000 held-out pairs)",
}
# name -> (config, Horovod workers, steps between checkpoints)
RECIPES = {
    "demo": ("configs/synthetic.py", 2, 200),
    "small_cpu": ("configs/small_cpu.py", 1, 200),
}
SAVED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) checkpoint step (\d+) saved", re.M)


def _python(*args):
    return [sys.executable] + [os.path.join(REPO, a) if a.endswith(".py") else a for a in args]


def prepare_data(root, spec):
    """Generate and pack the set `spec` describes once (reused when its meta.json matches)."""
    faces = os.path.join(root, "faces")
    meta_path = os.path.join(faces, "meta.json")
    rec = os.path.join(root, "train.rec")
    if os.path.isfile(meta_path) and os.path.isfile(rec):
        meta = json.load(open(meta_path))
        if all(meta.get(k) == v for k, v in spec.items()):
            return faces, rec
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    synth = [sys.executable, "-m", "recognition.synthetic", "--out", faces, "--no-pack",
             "--workers", str(os.cpu_count())]
    for key, value in spec.items():
        synth += ["--" + key.replace("_", "-"), str(value)]
    subprocess.run(synth, cwd=REPO, check=True)
    prefix, images = os.path.join(root, "train"), os.path.join(faces, "images")
    subprocess.run(_python("tools/im2rec.py", prefix, images, "--list", "--recursive"),
                   check=True)
    subprocess.run(_python("tools/im2rec.py", prefix, images, "--layout", "insightface",
                           "--quiet"), check=True)
    return faces, rec


def _log_time(stamp):
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))


def train(name, faces, rec, out, cap=None):
    """Run recipe `name` (to step `cap` if given); return [(step, minutes since launch)] of
    its checkpoints."""
    config, workers, every = RECIPES[name]
    run = os.path.join(out, name)
    shutil.rmtree(run, ignore_errors=True)
    cmd = _python("recognition/train.py", config, "--rec", rec, "--val_data_dir", faces,
                  "--output", run, "--verify_every", "0", "--save_every", str(every),
                  "--keep_checkpoints", "1000")
    if cap:
        cmd += ["--max_steps", str(cap)]
    cmd = local_workers_command(cmd, workers)
    # train.log stamps local time to the second; read the launch time in the same clock.
    start = calendar.timegm(time.localtime())
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    log = open(os.path.join(run, "train.log")).read()
    return [(int(step), (_log_time(stamp) - start) / 60) for stamp, step in SAVED.findall(log)]


def score(name, faces, out):
    """Verification accuracy of every saved checkpoint of recipe `name`: {step: (acc, std)}."""
    cfg = load_config(os.path.join(REPO, RECIPES[name][0]), [])
    report = os.path.join(out, name, "verify.json")
    subprocess.run(_python("tools/verify.py", "--data-dir", faces, "--target", "verify",
                           "--model", os.path.join(out, name, "model"), "--image-size",
                           "{},{}".format(*cfg.image_size), "--output", report, "--quiet"),
                   check=True, stdout=subprocess.DEVNULL)
    return {r["epoch"]: (r["acc"], r["acc_std"]) for r in json.load(open(report))["results"]}


def plot(results, path, title):
    """Accuracy (%) against minutes, one line per recipe."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, points in results.items():
        ax.plot([p["minutes"] for p in points], [100 * p["acc"] for p in points], "o-",
                label=f"{name} ({RECIPES[name][0]}, {RECIPES[name][1]} process(es))")
    ax.set_xlabel("wall-clock minutes since the training command started")
    ax.set_ylabel("held-out verification accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parse_caps(items):
    """`["demo=1200"]` -> {"demo": 1200}; only step-schedule recipes may be cut short."""
    caps = {}
    for item in items:
        name, _, steps = item.partition("=")
        if name not in RECIPES or not steps.isdigit():
            raise SystemExit(f"--cap {item!r}: expected NAME=STEPS with NAME in "
                             f"{sorted(RECIPES)}")
        if load_config(os.path.join(REPO, RECIPES[name][0]), []).lr_schedule != "step":
            raise SystemExit(f"--cap {item!r}: {RECIPES[name][0]} decays over its max_steps, "
                             f"so a capped run is not its curve cut short")
        caps[name] = int(steps)
    return caps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="aligned",
                        help="the face set (see above; default: aligned)")
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=list(RECIPES),
                        help="recipes to train and score (default: all)")
    parser.add_argument("--cap", nargs="*", default=[], metavar="NAME=STEPS",
                        help="stop a step-schedule recipe at STEPS (its curve cut short)")
    parser.add_argument("--data", default="/tmp/bench_recipes",
                        help="the sets are generated under DATA/SET (reused) with their runs")
    parser.add_argument("--plot", default=None, help="write the accuracy/minutes plot here")
    args = parser.parse_args()
    caps = parse_caps(args.cap)
    root = os.path.join(args.data, args.set)
    faces, rec = prepare_data(root, SETS[args.set])
    saved = os.path.join(root, "results.json")
    # Recipes run alone (one at a time, on a quiet machine) still share one table and plot.
    info = json.load(open(saved)) if os.path.isfile(saved) else dict(results={}, load={})
    for name in args.recipes:
        load_before = os.getloadavg()[0]
        times = train(name, faces, rec, os.path.join(root, "runs"), caps.get(name))
        info["load"][name] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        accuracy = score(name, faces, os.path.join(root, "runs"))
        info["results"][name] = [dict(step=s, minutes=round(m, 2), acc=accuracy[s][0],
                                      acc_std=accuracy[s][1])
                                 for s, m in times if s in accuracy]
        print(f"\n{name}: {RECIPES[name][0]}, {RECIPES[name][1]} process(es), load average "
              f"{info['load'][name][0]:.2f} before and {info['load'][name][1]:.2f} after")
        print("| step | minutes | held-out accuracy |\n|---:|---:|---:|")
        for p in info["results"][name]:
            print(f"| {p['step']} | {p['minutes']:.1f} | {100 * p['acc']:.2f} +- "
                  f"{100 * p['acc_std']:.2f} % |")
    info.update(machine=machine(), data=SETS[args.set])
    with open(saved, "w") as f:
        json.dump(info, f, indent=2)
    print(f"\nmachine: {info['machine']}")
    if args.plot:
        plot(info["results"], args.plot, f"{TITLES[args.set]}\n{info['machine']}")
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
