"""The plan as a dict (for ``--json``) and as the readable table ``tools/plan.py`` prints."""
from dataclasses import asdict

from .fit import largest_batch, largest_classes
from .memory import ACTIVATION_FACTORS, GIB, MIB, total, worker_memory
from .timing import GPU_FP32_TFLOPS, fc_work, gemm_seconds
from .traffic import link_seconds, step_traffic

__all__ = ["build_plan", "format_plan"]

# backbones.common.ChannelPReLU's forms, as prelu_form_for picks them per device
_FORMS = {"op": "one op (MXNet's PReLU, not built yet: its slope gradient is wrong in "
                "MXNet 1.9.1 graphs)",
          "conv": "four ops (minimum, 1x1 depthwise conv, relu, add), what training builds"}


def _backbone(stats, other):
    """The backbone's stats, with the activation count of the other PReLU form when known."""
    if stats is None:
        return None
    out = stats._asdict()
    if other is not None and other.activations != stats.activations:
        out["other_form"] = {"prelu_form": other.prelu_form, "activations": other.activations,
                             "activation_factor": ACTIVATION_FACTORS[other.prelu_form]}
    return out


def build_plan(setup, stats=None, gpu_bytes=None, links=(100.0, 25.0), step_time=None,
               tflops=GPU_FP32_TFLOPS, other_stats=None):
    """Everything the model says about ``setup`` (``stats``: BackboneStats or None, as the
    device builds the backbone; ``other_stats``: the same backbone in the other PReLU form,
    to show what the choice is worth)."""
    items = worker_memory(setup, stats)
    transfers = step_traffic(setup, None if stats is None else stats.params)
    sent = sum(t.bytes for t in transfers)
    work = fc_work(setup)
    gemm = gemm_seconds(setup, tflops)
    plan = {
        "setup": asdict(setup),
        "derived": {"global_batch": setup.global_batch, "classes_per_worker": setup.num_local,
                    "sampled_rows": setup.sampled_rows, "logit_columns": setup.logit_columns},
        "backbone": _backbone(stats, other_stats),
        "memory": [item._asdict() for item in items],
        "memory_peak_bytes": total(items),
        "memory_persistent_bytes": total(items, persistent_only=True),
        "traffic": [t._asdict() for t in transfers],
        "traffic_bytes_per_step": sent,
        "traffic_seconds_lower_bound": {f"{g:g}": link_seconds(sent, g) for g in links},
        "classifier_work": {"memory_bytes": work.bytes, "flops": work.flops,
                            "gpu_tflops": tflops, "gemm_seconds_lower_bound": gemm},
    }
    if step_time:
        plan["link_gbps_needed"] = {"step_time_s": step_time,
                                    "gbps_lower_bound": sent * 8 / step_time / 1e9}
    if gpu_bytes:
        plan["fit"] = {"gpu_memory_bytes": gpu_bytes,
                       "fits": plan["memory_peak_bytes"] <= gpu_bytes,
                       "largest_batch_per_worker": largest_batch(setup, stats, gpu_bytes),
                       "largest_classes": largest_classes(setup, stats, gpu_bytes)}
    return plan


def _size(num_bytes):
    if num_bytes >= GIB:
        return f"{num_bytes / GIB:,.2f} GiB"
    if num_bytes >= MIB or num_bytes == 0:
        return f"{num_bytes / MIB:,.1f} MiB"
    return f"{num_bytes / 1024:,.1f} KiB"


def _table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    last = len(header) - 1

    def line(row):
        return "  ".join(str(v).rjust(w) if i == last else str(v).ljust(w)
                         for i, (v, w) in enumerate(zip(row, widths))).rstrip()

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _header(plan):
    """The setup, the backbone (and which PReLU form its activations count), the classifier."""
    s, d, bb = plan["setup"], plan["derived"], plan["backbone"]
    net = "classifier only" if bb is None else (
        f"{bb['name']} ({bb['params'] / 1e6:.2f}M params, {bb['activations'] / 1e6:.1f}M "
        f"activations/image at {bb['input_size']}px)")
    fc = ("full FC" if d["sampled_rows"] is None
          else f"partial FC {s['sample_rate']:g}: {d['sampled_rows']:,} rows sampled")
    out = [f"{s['classes']:,} classes on {s['workers']} worker(s), {s['batch_size']} images/worker "
           f"(global {d['global_batch']:,}), {s['embedding_size']}-d, {s['dtype']}; {net}"]
    if bb is not None and "other_form" in bb:
        other = bb["other_form"]
        out.append(f"PReLU counted as {_FORMS[bb['prelu_form']]} "
                   f"({bb['activations'] / 1e6:.1f}M activations/image, factor "
                   f"{s['activation_factor']:g}); as {_FORMS[other['prelu_form']]}: "
                   f"{other['activations'] / 1e6:.1f}M (factor {other['activation_factor']:g})")
    return out + [f"classifier: {d['classes_per_worker']:,} classes/worker, {fc}"]


def _traffic(plan):
    rows = [[t["name"], t["formula"], _size(t["bytes"])] for t in plan["traffic"]]
    rows.append(["total", "", _size(plan["traffic_bytes_per_step"])])
    out = _table(rows, ["collective", "formula", "size"])
    out.append("time on the link at line rate (bytes / rate: a lower bound): " + ", ".join(
        f"{g} Gb/s: {sec * 1e3:,.1f} ms/step"
        for g, sec in plan["traffic_seconds_lower_bound"].items()))
    if "link_gbps_needed" in plan:
        need = plan["link_gbps_needed"]
        out.append(f"to move it within {need['step_time_s']:g} s/step: at least "
                   f"{need['gbps_lower_bound']:,.2f} Gb/s (bytes / time: a lower bound)")
    return out


def _work(plan):
    work = plan["classifier_work"]
    return [f"classifier work per step: {work['memory_bytes'] / 1e9:,.2f} GB of memory traffic, "
            f"{work['flops'] / 1e9:,.1f} GFLOP in its 3 GEMMs (2*N*K*D each): at least "
            f"{work['gemm_seconds_lower_bound'] * 1e3:,.1f} ms at {work['gpu_tflops']:g} "
            f"TFLOP/s (--gpu-tflops; peak rate: a lower bound)"]


def _fit(plan):
    s, fit, work = plan["setup"], plan["fit"], plan["classifier_work"]
    verdict = "fits" if fit["fits"] else "does NOT fit"
    return ["", f"Device of {fit['gpu_memory_bytes'] / GIB:g} GiB: this setup {verdict} "
            f"(peak {_size(plan['memory_peak_bytes'])}; memory only: its classifier GEMMs alone "
            f"take at least {work['gemm_seconds_lower_bound'] * 1e3:,.1f} ms/step at "
            f"{work['gpu_tflops']:g} TFLOP/s)",
            f"  largest batch per worker at {s['classes']:,} classes: "
            f"{fit['largest_batch_per_worker']:,}",
            f"  largest class count at {s['batch_size']} images/worker: "
            f"{fit['largest_classes']:,}"]


def format_plan(plan):
    """Readable text: setup, memory per worker, traffic per step, classifier work, fit."""
    out = _header(plan) + ["", "Memory per worker (worker 0 holds the largest shard):"]
    rows = [[m["part"], m["name"], m["formula"], _size(m["bytes"])] for m in plan["memory"]]
    rows += [["total", "persistent (held between steps)", "",
              _size(plan["memory_persistent_bytes"])],
             ["total", "peak (during a step)", "", _size(plan["memory_peak_bytes"])]]
    out += _table(rows, ["part", "item", "formula", "size"])
    out += ["", "Traffic per worker per step (bytes sent, ring all-reduces):"] + _traffic(plan)
    out += _work(plan)
    if "fit" in plan:
        out += _fit(plan)
    return "\n".join(out)
