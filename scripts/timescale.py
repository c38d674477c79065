#!/usr/bin/env python3
"""Render a time-scaled copy of CloudBill's monitoring configuration.

The alert tour (an integration run that makes every alert fire once) cannot wait
10 minutes for `for: 5m` over `rate(x[5m])`. This script writes a copy of the
production Prometheus and Alertmanager configuration in which every duration that
drives timing is divided by a scale factor, so at --scale 30 that alert fires in
about 20 s. The production files in monitoring/ stay the only source: nothing here
is edited by hand, the copy is rendered again whenever it is needed.

    python3 scripts/timescale.py --scale 30 --out /tmp/tour [--monitoring monitoring]

prints the facts of the rendering as JSON (scaled scrape/evaluation intervals, the
minimum range window, the files written).

What is scaled (and nothing else):
  prometheus/prometheus.yml   scrape_interval, scrape_timeout, evaluation_interval
                              (global and per scrape job)
  prometheus/rules/*.yml,     inside the PromQL of `expr:` (plain or block scalars):
  prometheus/alerts/*.yml     range windows [5m], subqueries [1h:1m] / [1h:],
                              `offset 10m` / `offset -10m`; and the rule keys `for:`,
                              `keep_firing_for:` and the group key `interval:`
  alertmanager/alertmanager.yml  group_wait, group_interval, repeat_interval,
                              resolve_timeout
  prometheus/targets/         copied verbatim (prometheus.yml refers to it relatively)

Why text-level and not a YAML round trip: the copy must stay diffable against the
source (comments, key order, quoting and block scalars unchanged; a test checks that
masking the durations gives identical text), and the python standard library has no
YAML parser anyway. The files are walked line by line with just enough YAML
structure (indentation, block scalars, parent keys) to know where a duration may
sit; PromQL is scanned with its string literals and comments skipped, so a regex
matcher such as {le=~"[5m]"}, an annotation saying "offset 10m" or a rule named
x:rate5m is never touched.

Why range windows are floored at 4x the scrape interval: rate()/increase() need at
least two samples in their window and become noisy (or empty after one missed
scrape) with fewer than about four. The scaled scrape interval is itself divided by
the scale, so dividing every window keeps that ratio, except where the production
window was already short or rounding bites; the floor `max(window/scale, 4*scrape)`
(scrape = the largest scaled scrape interval of any job) keeps every window usable.
Offsets, subquery steps, `for:` and the Alertmanager timers are just divided.
"""
import argparse
import json
import math
import os
import re
import shutil
import sys

# --------------------------------------------------------------------- durations

UNIT_MS = {"y": 365 * 86400_000, "w": 7 * 86400_000, "d": 86400_000,
           "h": 3600_000, "m": 60_000, "s": 1000, "ms": 1}
UNIT_ORDER = ["y", "w", "d", "h", "m", "s", "ms"]  # Prometheus requires this order

# One Prometheus duration token: one or more <int><unit> parts (1h30m, 500ms, 5m),
# or a bare 0. `ms` is tried before `m` so 500ms is not read as 500m + "s".
DURATION = r"(?:(?:\d+(?:ms|[smhdwy]))+|0)(?![A-Za-z0-9_])"
_PART_RE = re.compile(r"(\d+)(ms|[smhdwy])")
_DURATION_RE = re.compile(r"^" + DURATION + r"$")


def _check_scale(scale):
    """Return scale as a float; ValueError unless it is a finite number >= 1."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise ValueError(f"scale must be a number, got {scale!r}")
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale!r}")
    if scale < 1:
        raise ValueError(f"scale must be >= 1 (a copy can only be faster), got {scale!r}")
    return float(scale)


def _parse_ms(text):
    """Prometheus duration -> integer milliseconds (ValueError if malformed)."""
    s = text.strip()
    if s == "0":
        return 0
    if not s or not _DURATION_RE.match(s):
        raise ValueError(f"not a Prometheus duration: {text!r}")
    total, last = 0, -1
    for number, unit in _PART_RE.findall(s):
        rank = UNIT_ORDER.index(unit)
        if rank <= last:
            raise ValueError(f"not a Prometheus duration (units out of order): {text!r}")
        last = rank
        total += int(number) * UNIT_MS[unit]
    return total


def parse_duration(text):
    """Prometheus duration ("5m", "1h30m", "500ms", "0") -> seconds (float)."""
    return _parse_ms(text) / 1000.0


def _round_ms(ms):
    """Round to whole milliseconds, half up. A duration that was not zero stays at
    least 1ms: 0 would mean "disabled"/invalid (scrape_interval: 0s is rejected)."""
    rounded = math.floor(ms + 0.5)
    return 1 if rounded == 0 and ms > 0 else int(rounded)


def _format_ms(ms):
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def format_duration(seconds):
    """Seconds -> "Ns" when whole seconds, else "Nms" (rounded to the millisecond)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format duration of {seconds!r} s")
    return _format_ms(_round_ms(seconds * 1000.0))


def _scaled_ms(ms, scale, floor_ms=0):
    return max(_round_ms(ms / scale), floor_ms)


def scale_duration(text, scale):
    """Divide one duration by scale: scale_duration("5m", 30) == "10s".
    With scale == 1 the text comes back unchanged (not even reformatted)."""
    scale = _check_scale(scale)
    ms = _parse_ms(text)  # validate even at scale 1
    if scale == 1:
        return text
    return _format_ms(_scaled_ms(ms, scale))


# --------------------------------------------------------------------- PromQL

_BRACKET_RE = re.compile(r"\[\s*(" + DURATION + r")\s*(?:(:)\s*(" + DURATION + r")?\s*)?\]")
_IDENT_RE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_OFFSET_ARG_RE = re.compile(r"\s+-?(" + DURATION + r")")
_NUMBER_RE = re.compile(r"[0-9.][0-9A-Za-z_.+-]*")


def promql_duration_sites(expr):
    """Duration tokens of a PromQL expression: [(start, end, kind)] with kind one of
    "range" (range window or subquery range), "step" (subquery step), "offset".
    String literals ("..", '..', `..`) and # comments are skipped."""
    sites, i, n = [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'":                      # string with backslash escapes
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" else 1
            i = j + 1
        elif c == "`":                      # raw string, no escapes
            j = expr.find("`", i + 1)
            i = n if j < 0 else j + 1
        elif c == "#":                      # PromQL (or YAML) comment
            j = expr.find("\n", i)
            i = n if j < 0 else j
        elif c == "[":
            m = _BRACKET_RE.match(expr, i)
            if m:
                sites.append((m.start(1), m.end(1), "range"))
                if m.group(3):
                    sites.append((m.start(3), m.end(3), "step"))
                i = m.end()
            else:
                i += 1
        elif c.isalpha() or c in "_:":
            # Whole identifiers, so rate5m / my_offset_total / x:rate5m are skipped.
            m = _IDENT_RE.match(expr, i)
            if m.group().lower() == "offset":
                arg = _OFFSET_ARG_RE.match(expr, m.end())
                if arg:
                    sites.append((arg.start(1), arg.end(1), "offset"))
                    i = arg.end()
                    continue
            i = m.end()
        elif c.isdigit():
            i = _NUMBER_RE.match(expr, i).end()
        else:
            i += 1
    return sites


# --------------------------------------------------------------------- YAML walk

_KEY_LINE_RE = re.compile(r"^(?P<lead>[ ]*(?:-[ ]+)*)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)[ ]*:(?P<rest>(?:[ \t].*)?)$")
_BLOCK_HEADER_RE = re.compile(r"^[|>][0-9+-]*[ \t]*(?:#.*)?$")
_SCALAR_DURATION_RE = re.compile(r"^(?P<q>[\"']?)(?P<d>" + DURATION + r")(?P=q)[ \t]*(?:#.*)?$")


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def _yaml_duration_sites(text, duration_keys, expr_parents=()):
    """Walk YAML text line by line. Returns [(start, end, kind)] character spans:
    kind "key:<name>@<parent key>" for a duration value of one of duration_keys (a dict
    key -> set of allowed parent keys), and PromQL sites for `expr` values whose
    parent key is in expr_parents. Values (and block scalars) of all other keys are
    skipped, so text in annotations can never match."""
    lines = text.splitlines(keepends=True)
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line)
    sites, stack, i = [], [], 0   # stack: (indent, key) of keys opening a mapping/sequence
    while i < len(lines):
        line = lines[i].rstrip("\r\n")
        m = _KEY_LINE_RE.match(line)
        if not m or line.lstrip().startswith("#"):
            i += 1
            continue
        key, key_col = m.group("key"), len(m.group("lead"))
        while stack and stack[-1][0] >= key_col:
            stack.pop()
        parent = stack[-1][1] if stack else None
        rest = m.group("rest")
        value = rest.strip()
        value_col = m.start("rest") + (len(rest) - len(rest.lstrip()))
        # Lines that belong to this key's value: more indented than the key, or blank.
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > key_col):
            j += 1
        if value.startswith("#"):
            value = ""
        is_expr = key == "expr" and parent in expr_parents
        if is_expr:
            if value[:1] in ("\"", "'"):
                raise ValueError(f"line {i + 1}: quoted expr is not supported (PromQL string "
                                 f"escaping inside YAML quotes); write it as a plain or block scalar")
            if _BLOCK_HEADER_RE.match(value) or not value:
                begin = starts[i + 1] if i + 1 < len(lines) else len(text)
            else:
                begin = starts[i] + value_col
            end = starts[j] if j < len(lines) else len(text)
            for s, e, kind in promql_duration_sites(text[begin:end]):
                sites.append((begin + s, begin + e, kind))
            i = j
            continue
        if key in duration_keys and parent in duration_keys[key]:
            d = _SCALAR_DURATION_RE.match(value)
            if not d:
                raise ValueError(f"line {i + 1}: {key}: {value!r} is not a Prometheus duration")
            s = starts[i] + value_col + d.start("d")
            sites.append((s, s + len(d.group("d")), f"key:{key}@{parent}"))
            i = j
            continue
        if value:
            i = j        # scalar / block scalar / flow value of another key: skip it whole
        else:
            stack.append((key_col, key))
            i += 1
    return sites


def _apply(text, sites, new_value):
    """Replace each site (start, end, kind) by new_value(token, kind)."""
    out, last = [], 0
    for start, end, kind in sorted(sites):
        out.append(text[last:start])
        out.append(new_value(text[start:end], kind))
        last = end
    out.append(text[last:])
    return "".join(out)


# Where each duration key is scaled: key -> parent keys (YAML structure).
PROMETHEUS_KEYS = {"scrape_interval": {"global", "scrape_configs"},
                   "scrape_timeout": {"global", "scrape_configs"},
                   "evaluation_interval": {"global"}}
RULE_KEYS = {"for": {"rules"}, "keep_firing_for": {"rules"}, "interval": {"groups"}}
ALERTMANAGER_KEYS = {"group_wait": {"route", "routes"}, "group_interval": {"route", "routes"},
                     "repeat_interval": {"route", "routes"}, "resolve_timeout": {"global"}}


def prometheus_sites(text):
    return _yaml_duration_sites(text, PROMETHEUS_KEYS)


def rule_sites(text):
    return _yaml_duration_sites(text, RULE_KEYS, expr_parents={"rules"})


def alertmanager_sites(text):
    return _yaml_duration_sites(text, ALERTMANAGER_KEYS)


def scale_prometheus_text(text, scale):
    """Scale prometheus.yml. A scrape timeout is a tolerance, not a time the signal takes:
    divided like the rest, but never below the scaled global scrape interval (nor above
    the original). Shrinking it to 1/30 would fail scrapes a compressed Prometheus on a
    busy machine answers in time, and show a healthy target as down; it cannot exceed
    the interval, the most a scrape may take. (A job's own scrape_timeout, which the real
    file does not have, is treated the same way.)"""
    scale = _check_scale(scale)
    if scale == 1:
        return text
    global_ms, _, _ = scrape_intervals_ms(text, scale)

    def new(tok, kind):
        if kind.startswith("key:scrape_timeout@"):
            original = _parse_ms(tok)
            return _format_ms(min(original, max(_scaled_ms(original, scale), global_ms)))
        return scale_duration(tok, scale)
    return _apply(text, prometheus_sites(text), new)


def _rule_duration(scale, min_window_ms):
    """How a duration of a rule's PromQL or keys is scaled: range windows (and subquery
    ranges, windows of the outer *_over_time function) floored at min_window_ms, the
    rest just divided; at scale 1 the token comes back byte-identical, no floor either."""
    def new(tok, kind):
        if scale == 1:
            return tok
        floor = min_window_ms if kind == "range" else 0
        return _format_ms(_scaled_ms(_parse_ms(tok), scale, floor))
    return new


def scale_rules_text(text, scale, min_window_ms=0):
    """Scale one rule file. Range windows (and subquery ranges, which are windows of
    the outer *_over_time function) are floored at min_window_ms; subquery steps,
    offsets and the `for`/`keep_firing_for`/`interval` keys are just divided."""
    scale = _check_scale(scale)
    return _apply(text, rule_sites(text), _rule_duration(scale, min_window_ms))


def scale_promql(expr, scale, min_window_ms=0):
    """Scale the durations of one PromQL expression as scale_rules_text scales an `expr:`
    (the alert tour's dashboard snapshots read the dashboards' queries this way)."""
    scale = _check_scale(scale)
    return _apply(expr, promql_duration_sites(expr), _rule_duration(scale, min_window_ms))


def scale_alertmanager_text(text, scale):
    scale = _check_scale(scale)
    return _apply(text, alertmanager_sites(text), lambda tok, kind: scale_duration(tok, scale))


# --------------------------------------------------------------------- render

def _read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def scrape_intervals_ms(prometheus_text, scale):
    """(scaled global scrape_interval, largest scaled scrape_interval of any job,
    scaled evaluation_interval), all in ms, from prometheus.yml's text."""
    scale = _check_scale(scale)
    g, job_scrape = {}, []
    for start, end, kind in prometheus_sites(prometheus_text):
        ms = _parse_ms(prometheus_text[start:end])
        if scale != 1:
            ms = _scaled_ms(ms, scale)
        key, parent = kind[len("key:"):].split("@")
        if parent == "global":
            g[key] = ms
        elif key == "scrape_interval":
            job_scrape.append(ms)
    for key in ("scrape_interval", "evaluation_interval"):
        if key not in g:
            # The copy would silently keep Prometheus' 1m default: refuse instead.
            raise ValueError(f"prometheus.yml has no global {key}: set it explicitly so it can be scaled")
    largest = max([g["scrape_interval"]] + job_scrape)
    return g["scrape_interval"], largest, g["evaluation_interval"]


def render(monitoring_dir, out_dir, scale):
    """Write the scaled copy of monitoring_dir's Prometheus/Alertmanager config into
    out_dir/prometheus and out_dir/alertmanager; return the facts as a dict."""
    scale = _check_scale(scale)
    monitoring_dir, out_dir = os.path.abspath(monitoring_dir), os.path.abspath(out_dir)
    if os.path.realpath(out_dir) == os.path.realpath(monitoring_dir):
        raise ValueError("out_dir must not be the monitoring directory (it would overwrite production files)")
    prom_src = os.path.join(monitoring_dir, "prometheus")
    prom_yml = os.path.join(prom_src, "prometheus.yml")
    if not os.path.isfile(prom_yml):
        raise FileNotFoundError(f"no prometheus/prometheus.yml under {monitoring_dir}")
    files = []

    prom_text = _read(prom_yml)
    scrape_ms, largest_scrape_ms, eval_ms = scrape_intervals_ms(prom_text, scale)
    min_window_ms = 4 * largest_scrape_ms
    _write(os.path.join(out_dir, "prometheus", "prometheus.yml"), scale_prometheus_text(prom_text, scale))
    files.append("prometheus/prometheus.yml")

    for sub in ("rules", "alerts"):
        src_dir = os.path.join(prom_src, sub)
        if not os.path.isdir(src_dir):
            continue
        for name in sorted(os.listdir(src_dir)):
            if not name.endswith((".yml", ".yaml")):
                continue
            src = os.path.join(src_dir, name)
            try:
                scaled = scale_rules_text(_read(src), scale, min_window_ms)
            except ValueError as e:
                raise ValueError(f"{src}: {e}") from None
            _write(os.path.join(out_dir, "prometheus", sub, name), scaled)
            files.append(f"prometheus/{sub}/{name}")

    targets = os.path.join(prom_src, "targets")
    if os.path.isdir(targets):
        shutil.copytree(targets, os.path.join(out_dir, "prometheus", "targets"), dirs_exist_ok=True)
        for name in sorted(os.listdir(targets)):
            files.append(f"prometheus/targets/{name}")

    am_yml = os.path.join(monitoring_dir, "alertmanager", "alertmanager.yml")
    if os.path.isfile(am_yml):
        _write(os.path.join(out_dir, "alertmanager", "alertmanager.yml"),
               scale_alertmanager_text(_read(am_yml), scale))
        files.append("alertmanager/alertmanager.yml")

    return {
        "scale": int(scale) if scale.is_integer() else scale,
        "scrape_interval_s": scrape_ms / 1000,
        "max_scrape_interval_s": largest_scrape_ms / 1000,
        "evaluation_interval_s": eval_ms / 1000,
        "min_range_window_s": min_window_ms / 1000,
        "out_dir": out_dir,
        "files": files,
    }


# --------------------------------------------------------------------- CLI

class _Parser(argparse.ArgumentParser):
    def error(self, message):           # one line on stderr, exit 2 (no usage dump)
        sys.stderr.write(f"timescale: {message}\n")
        sys.exit(2)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    p = _Parser(description="Render a time-scaled copy of the monitoring configuration.")
    p.add_argument("--scale", required=True, type=float, help="divide durations by this (>= 1)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--monitoring", default=os.path.join(here, "..", "monitoring"),
                   help="source monitoring directory (default: the repository's)")
    args = p.parse_args(argv)
    try:
        facts = render(args.monitoring, args.out, args.scale)
    except (ValueError, FileNotFoundError) as e:
        sys.stderr.write(f"timescale: {e}\n".replace("\n", " ").rstrip() + "\n")
        return 2
    print(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
