"""Experiment configs: `configs/base.py` holds every key and its default; an experiment file
sets `config = dict(...)` with the keys it changes; the command line may override any key.
A file may start from another experiment instead of base with `BASE = "other.py"` (a path
relative to it), so a family of variants states only what differs.

An unknown key, in a file or on the command line, or a value of the wrong type is an error
that names the key and lists the known ones, so a typo never silently trains the default.
"""
import ast
import importlib.util
import os
import shlex

from easydict import EasyDict

from .errors import DataError

__all__ = ["load_config", "parse_overrides", "ConfigError", "BASE_CONFIG"]

BASE_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "configs", "base.py")


class ConfigError(ValueError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


def _load_module(path):
    if not os.path.isfile(path):
        raise DataError(f"{path}: config file not found")
    spec = importlib.util.spec_from_file_location(f"config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not isinstance(getattr(module, "config", None), dict):
        raise ConfigError(f"{path}: must define `config = dict(...)`")
    return module


def _load_module_dict(path):
    return dict(_load_module(path).config)


def _experiment_chain(path):
    """`[(path, dict)]` from the first experiment above base down to `path` (via BASE)."""
    chain, seen = [], set()
    while os.path.abspath(path) != os.path.abspath(BASE_CONFIG):
        if os.path.abspath(path) in seen:
            raise ConfigError(f"{path}: BASE chain loops back to itself")
        seen.add(os.path.abspath(path))
        module = _load_module(path)
        chain.insert(0, (path, dict(module.config)))
        parent = getattr(module, "BASE", None)
        if parent is None:
            break
        path = os.path.join(os.path.dirname(path), parent)
    return chain


def _check_type(key, value, default, source):
    """Accept a value of the default's type (ints for floats, None where the default is None)."""
    if default is None or value is None:
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
        value = float(value) if ok else value
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"{source}: key {key!r} expects {type(default).__name__} "
                          f"(default {default!r}), got {value!r}")
    return value


def _merge(base, updates, source):
    for key, value in updates.items():
        if key not in base:
            known = ", ".join(sorted(base))
            raise ConfigError(f"{source}: unknown config key {key!r}; known keys: {known}")
        base[key] = _check_type(key, value, base[key], source)
    return base


def _parse_value(text):
    """`0.05` -> float, `true` -> True, `r18` -> 'r18', `100,140` -> [100, 140]."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        value = ast.literal_eval(text)
        return list(value) if isinstance(value, tuple) else value
    except (ValueError, SyntaxError):
        pass
    if "," in text:
        return [_parse_value(part) for part in text.split(",") if part]
    return text


def parse_overrides(args):
    """`['--lr', '0.05', '--network=r18']` -> `{'lr': 0.05, 'network': 'r18'}`."""
    overrides, i = {}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument {arg!r}: overrides look like --key value")
        key, _, value = arg[2:].partition("=")
        if not _:
            if i + 1 >= len(args):
                raise ConfigError(f"override --{key} needs a value")
            value, i = args[i + 1], i + 1
        overrides[key.replace("-", "_")] = _parse_value(value)
        i += 1
    return overrides


def load_config(path, overrides=None):
    """Base defaults, then the experiment file, then command-line overrides (a dict or argv)."""
    config = _load_module_dict(BASE_CONFIG)
    name = os.path.splitext(os.path.basename(path))[0]
    for source, updates in _experiment_chain(path):
        _merge(config, updates, source)
    if isinstance(overrides, (list, tuple)):
        overrides = parse_overrides(list(overrides))
    _merge(config, overrides or {}, "command line")
    config["config_name"] = name
    if not config.get("output"):
        config["output"] = os.path.join("work_dirs", name)
    return EasyDict(config)


def format_config(config):
    """One `key = value` line per key, sorted, for logs and the saved checkpoint."""
    return "\n".join(f"{key} = {config[key]!r}" for key in sorted(config))


def command_line(config):
    """The overrides that reproduce `config` from base, as a shell fragment (for logs)."""
    base = _load_module_dict(BASE_CONFIG)
    return " ".join(f"--{k} {shlex.quote(str(v))}" for k, v in sorted(config.items())
                    if k in base and base[k] != v)
