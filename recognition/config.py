"""Experiment configs: `configs/base.py` holds every key and its default; an experiment file
sets `config = dict(...)` with the keys it changes; the command line may override any key.
A file may start from another experiment instead of base with `BASE = "other.py"` (a path
relative to it), so a family of variants states only what differs.

Every key has a type: its default's, or the one `OPTIONAL` in base.py declares for keys whose
default is None. Command-line values are parsed as that type (`--pretrained a/model,0` stays
one string, `--lr_steps 10,20` becomes a list of ints). An unknown key, a value of the wrong
type or out of range, or a config file that does not run is an error naming the key or file,
so a typo never silently trains the default. When loaded, the margin keys left at None are
filled in from the `loss` preset, so the config shows what is trained.
"""
import ast
import importlib.util
import json
import os

from easydict import EasyDict

from .errors import ConfigError, DataError
from .validation import check_values

__all__ = ["load_config", "parse_overrides", "format_config", "describe_keys", "ConfigError",
           "BASE_CONFIG"]

BASE_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "configs", "base.py")
MARGIN_KEYS = {"margin_s": "s", "margin_m1": "m1", "margin_m2": "m2", "margin_m3": "m3"}


def _load_module(path):
    """Run a config file; a syntax or run-time error in it is a ConfigError naming the line."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: config file not found")
    spec = importlib.util.spec_from_file_location(f"config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:  # the file is user code: any error in it is the user's to fix
        line = _error_line(exc, path)
        raise ConfigError(f"{path}{line}: {type(exc).__name__}: {exc}") from None
    if not isinstance(getattr(module, "config", None), dict):
        raise ConfigError(f"{path}: must define `config = dict(...)`")
    return module


def _error_line(exc, path):
    tb = exc.__traceback__
    line = ""
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == os.path.abspath(path):
            line = f":{tb.tb_lineno}"
        tb = tb.tb_next
    return line


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


class _Schema:
    """Defaults and the declared type of every key, read from configs/base.py."""

    def __init__(self):
        module = _load_module(BASE_CONFIG)
        self.defaults = dict(module.config)
        optional = getattr(module, "OPTIONAL", {})
        self.types = {k: optional.get(k, type(v)) for k, v in self.defaults.items()}
        untyped = [k for k, t in self.types.items() if t is type(None)]
        if untyped:
            raise ConfigError(f"{BASE_CONFIG}: keys {untyped} default to None; declare their "
                              f"type in OPTIONAL")

    def check(self, key, value, source):
        """`value` as the key's type (ints for floats); ConfigError when it is not."""
        if key not in self.defaults:
            known = ", ".join(sorted(self.defaults))
            raise ConfigError(f"{source}: unknown config key {key!r}; known keys: {known}")
        kind = self.types[key]
        if value is None and self.defaults[key] is None:
            return None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is list and isinstance(value, tuple):
            value = list(value)
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise ConfigError(f"{source}: key {key!r} expects {kind.__name__} "
                              f"(default {self.defaults[key]!r}), got {value!r}")
        return value

    def parse(self, key, text):
        """A command-line string as the key's declared type."""
        if key not in self.defaults:
            return text  # check() names the unknown key
        kind, default = self.types[key], self.defaults[key]
        if default is None and text.lower() in ("none", "null"):
            return None
        try:
            if kind is bool:
                return _parse_bool(text)
            if kind in (int, float):
                return kind(text)
            if kind is list:
                return _parse_list(text, default)
            if kind is dict:
                return _parse_literal(text)
        except ValueError:
            return text  # check() reports the type error with the key's default
        return text


def _parse_bool(text):
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(text)


def _parse_literal(text):
    """A Python or JSON literal (`{"act": "prelu", "trsf": true}` works both ways)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(text) from None


def _parse_list(text, default):
    """`10,20` or `[10, 20]` or `''`; elements take the type of the default's elements."""
    if text.strip() in ("", "[]"):
        return []
    try:
        value = _parse_literal(text)
    except ValueError:
        value = None
    if not isinstance(value, (list, tuple)):
        value = [part.strip() for part in text.split(",") if part.strip()]
    kind = type(default[0]) if default else None
    if kind in (int, float):
        return [kind(v) for v in value]
    if kind is str:
        return [str(v) for v in value]
    return list(value)


def parse_overrides(args):
    """`['--lr', '0.05', '--network=r18']` -> `{'lr': '0.05', 'network': 'r18'}` (strings;
    `load_config` parses each as its key's type)."""
    overrides, i = {}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument {arg!r}: overrides look like --key value")
        key, has_value, value = arg[2:].partition("=")
        if not has_value:
            if i + 1 >= len(args):
                raise ConfigError(f"override --{key} needs a value")
            value, i = args[i + 1], i + 1
        overrides[key.replace("-", "_")] = value
        i += 1
    return overrides


def _merge(schema, config, updates, source, from_text=False):
    for key, value in updates.items():
        if from_text and isinstance(value, str):
            value = schema.parse(key, value)
        config[key] = schema.check(key, value, source)
    return config


def _fill_margins(config):
    """Margin keys left at None take the `loss` preset's values (see heads/margin.PRESETS)."""
    from .heads.margin import PRESETS

    if config["loss"] not in PRESETS:
        raise ConfigError(f"loss {config['loss']!r} is not one of {', '.join(sorted(PRESETS))}")
    preset = PRESETS[config["loss"]]
    for key, name in MARGIN_KEYS.items():
        if config[key] is None:
            config[key] = float(preset[name])


def load_config(path, overrides=None):
    """Base defaults, then the experiment file, then command-line overrides (a dict or argv),
    then the margins from the loss preset; every value is checked (see the module docstring)."""
    schema = _Schema()
    config = dict(schema.defaults)
    name = os.path.splitext(os.path.basename(path))[0]
    for source, updates in _experiment_chain(path):
        _merge(schema, config, updates, source)
    if isinstance(overrides, (list, tuple)):
        _merge(schema, config, parse_overrides(list(overrides)), "command line", from_text=True)
    else:
        _merge(schema, config, overrides or {}, "overrides")
    _fill_margins(config)
    check_values(config)
    config["config_name"] = name
    if not config.get("output"):
        config["output"] = os.path.join("work_dirs", name)
    return EasyDict(config)


def format_config(config):
    """One `key = value` line per key, sorted, for logs and `--print-config`."""
    return "\n".join(f"{key} = {config[key]!r}" for key in sorted(config))


def describe_keys():
    """`[(key, default, comment)]` of configs/base.py in file order, for `train.py --help`.

    Comments are read with the tokenizer: the ones on a key's line and on the comment-only
    lines below it, up to the next key (section rules `# ---` are left out).
    """
    import io
    import tokenize

    source = open(BASE_CONFIG).read()
    tree = ast.parse(source)
    call = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", None) == "config")
    starts = [(kw.value.lineno, kw.arg) for kw in call.keywords]
    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and not tok.string.startswith("# ---"):
            comments.setdefault(tok.start[0], tok.string.lstrip("# ").rstrip())
    defaults = _Schema().defaults
    out = []
    for i, (line, key) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else call.end_lineno
        text = " ".join(comments[n] for n in range(line, end) if n in comments)
        out.append((key, defaults[key], text))
    return out
