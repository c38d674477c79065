"""Dashboard snapshots: what Grafana would have shown, rendered from the provisioned
dashboard JSON through Prometheus' HTTP API into one self-contained HTML file.

Used by scripts/snapshot (the CLI behind `make snapshot`) and by scripts/tour (one
overview per scenario). Python 3 standard library only.

What follows Grafana (10/11, Prometheus datasource) and what does not:
- Variables: `$name`, `${name}`, `${name:format}` and `[[name]]`; query variables of the
  form `label_values(selector, label)` are asked of Prometheus for the time range; "All"
  is the variable's `allValue` or, without one, the values joined as a regex, as Grafana
  does for multi-value Prometheus variables.
- `$__interval` is the range divided by the panel's data points (its `maxDataPoints`, or
  its width: 50 px per grid column), never below the scrape interval, rounded to a whole
  step as Grafana rounds it; `$__rate_interval` is max($__interval + scrape interval,
  4 x scrape interval). Grafana takes the scrape interval from the datasource's
  `timeInterval` (15s, the same as prometheus.yml); the snapshot reads it from the
  Prometheus it queries, so a time-scaled Prometheus (the alert tour's) is read right.
- Panels: timeseries (lines, or stacked bars for `drawStyle: bars`), stat, gauge,
  bargauge and table, with units, decimals, value mappings, thresholds (colours, and
  threshold lines for `thresholdsStyle.mode: line`), field overrides by name or regex
  (fixed colour, dashed line), legends from `legendFormat` with the legend calcs.
- The dashboard's annotation queries (the injected-faults one) shade the time ranges in
  which they returned a sample; a caller can add shaded windows of its own.
- Not rendered: tooltips, transformations other than a table's reduce, panel links.
"""
import datetime
import os
import html
import json
import math
import re
import time
import urllib.parse
import urllib.request

PALETTE = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff", "#ffb357",
           "#56a64b", "#e0b400", "#3274d9", "#fa6400", "#e02f44", "#8f3bb8", "#96d98d", "#ffee52"]
NAMED_COLOURS = {"green": "#73bf69", "red": "#f2495c", "orange": "#ff9830", "yellow": "#fade2a",
                 "blue": "#5794f2", "purple": "#b877d9", "text": "#ccccdc", "transparent": "transparent"}
# Grafana's interval rounding (kbn.roundInterval): (below this many ms, use this many ms).
ROUNDING_MS = [(15, 10), (35, 20), (75, 50), (150, 100), (250, 200), (350, 300), (450, 400), (750, 500),
               (1500, 1000), (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000),
               (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000),
               (1050000, 900000), (1500000, 1200000), (2700000, 1800000), (5400000, 3600000),
               (9000000, 7200000), (16200000, 10800000), (32400000, 21600000), (86400000, 43200000),
               (604800000, 86400000), (1814400000, 604800000), (3628800000, 2592000000)]
# Steps for the time axis' ticks.
NICE_STEPS = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200,
              86400, 604800, 2592000, 31536000]
# The files Grafana provisions: the single source of every snapshot.
DASHBOARD_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                              "..", "..", "monitoring", "grafana", "provisioning", "dashboards"))
PIXELS_PER_COLUMN = 50
ROW_PIXELS = 30


class SnapshotError(Exception):
    pass


def colour(name):
    return NAMED_COLOURS.get(name, name or "#ccccdc")


def duration_text(seconds):
    """A PromQL duration for a number of seconds."""
    ms = int(round(seconds * 1000))
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0 and s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def parse_duration(text):
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise SnapshotError(f"not a duration: {text!r}")
    return total


def round_interval(seconds):
    ms = seconds * 1000
    return next((out for below, out in ROUNDING_MS if ms < below), 31536000000) / 1000


# --------------------------------------------------------------------------- Prometheus

class Prometheus:
    def __init__(self, url, timeout=30):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.queries = 0

    def get(self, path, params, post=True):
        query = urllib.parse.urlencode(params, doseq=True)
        if post:  # queries go in the body, as Grafana's datasource sends them (httpMethod: POST)
            request = urllib.request.Request(f"{self.url}{path}", data=query.encode(), method="POST",
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            request = urllib.request.Request(f"{self.url}{path}?{query}")
        self.queries += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            try:
                answer = json.load(error)
            except ValueError:
                raise SnapshotError(f"Prometheus answered {error.code} for {path}") from None
        except OSError as error:
            raise SnapshotError(f"Prometheus at {self.url} cannot be reached: {error}") from None
        if answer.get("status") != "success":
            raise SnapshotError(f"Prometheus refused {params.get('query', path)!r}: {answer.get('error')}")
        return answer["data"]

    def scrape_interval(self):
        config = self.get("/api/v1/status/config", {}, post=False)["yaml"]
        m = re.search(r"^global:\s*\n(?:[ \t]+.*\n)*?[ \t]+scrape_interval:\s*(\S+)", config, re.M)
        return parse_duration(m.group(1)) if m else 60.0

    def query_range(self, expr, start, end, step):
        return self.get("/api/v1/query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                                "step": duration_text(step)})["result"]

    def query(self, expr, at):
        data = self.get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def label_values(self, label, selector, start, end):
        params = {"start": f"{start:.3f}", "end": f"{end:.3f}"}
        if selector:
            params["match[]"] = selector
        return self.get(f"/api/v1/label/{urllib.parse.quote(label)}/values", params, post=False)


# --------------------------------------------------------------------------- variables

VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(\w+)")


class Variables:
    """The dashboard's template variables and Grafana's built-ins, for one time range."""

    def __init__(self, dashboard, prometheus, start, end, scrape_interval, chosen=None):
        self.start, self.end = start, end
        self.scrape = scrape_interval
        self.values = {}      # name -> list of values, or ["$__all"]
        self.resolved = {}    # name -> text substituted into queries
        self.shown = {}       # name -> what the snapshot says was selected
        chosen = chosen or {}
        for v in dashboard.get("templating", {}).get("list", []):
            name = v["name"]
            if v["type"] == "datasource":
                self.resolved[name] = (v.get("current") or {}).get("value") or "default"
                self.shown[name] = self.resolved[name]
                continue
            if v["type"] in ("constant", "textbox", "custom", "interval"):
                value = chosen.get(name) or str((v.get("current") or {}).get("value") or v.get("query") or "")
                self.resolved[name] = value
                self.shown[name] = value
                continue
            if v["type"] != "query":
                raise SnapshotError(f"variable ${name}: type {v['type']} is not supported")
            query = v.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            m = re.fullmatch(r"\s*label_values\((?:(.+),\s*)?(\w+)\)\s*", query or "")
            if not m:
                raise SnapshotError(f"variable ${name}: only label_values(selector, label) is supported, not {query!r}")
            selector = self.substitute(m.group(1) or "", interval=scrape_interval)
            options = sorted(set(prometheus.label_values(m.group(2), selector, start, end)))
            if v.get("regex"):
                options = [o for o in options if re.search(v["regex"], o)]
            if name in chosen:
                wanted = chosen[name].split(",")
            else:
                wanted = (v.get("current") or {}).get("value") or ["$__all"]
                wanted = wanted if isinstance(wanted, list) else [wanted]
            if "$__all" in wanted or "All" in wanted:
                self.shown[name] = "All"
                self.resolved[name] = v.get("allValue") or self.regex(options)
            else:
                self.shown[name] = ", ".join(wanted)
                self.resolved[name] = self.regex(wanted) if (v.get("multi") or len(wanted) > 1) else wanted[0]

    @staticmethod
    def regex(values):
        escaped = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", value) for value in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    def builtins(self, interval):
        span = self.end - self.start
        rate = max(interval + self.scrape, 4 * self.scrape)
        return {"__interval": duration_text(interval), "__interval_ms": str(int(interval * 1000)),
                "__rate_interval": duration_text(rate), "__range": duration_text(round(span)),
                "__range_s": str(int(round(span))), "__range_ms": str(int(round(span * 1000)))}

    def substitute(self, text, interval):
        values = {**self.builtins(interval), **self.resolved}

        def replace(m):
            name = m.group(1) or m.group(3) or m.group(5)
            if name not in values:
                raise SnapshotError(f"unknown variable ${name} in {text!r}")
            return values[name]
        return VARIABLE.sub(replace, text)

    def interval_for(self, panel):
        """Grafana's $__interval for the panel: range / data points, not below the scrape
        interval (or the panel's own minimum interval), rounded."""
        points = panel.get("maxDataPoints") or panel["gridPos"]["w"] * PIXELS_PER_COLUMN
        minimum = self.scrape
        if panel.get("interval"):
            minimum = max(minimum, parse_duration(self.substitute(panel["interval"], self.scrape).lstrip(">")))
        return max(minimum, round_interval((self.end - self.start) / points))


# --------------------------------------------------------------------------- units

def fmt_value(value, unit, decimals=None):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    unit = unit or "short"

    def number(v, suffix=""):
        if decimals is not None:
            return f"{v:.{decimals}f}{suffix}"
        a = abs(v)
        digits = 0 if a >= 100 or v == int(v) else 1 if a >= 10 else 2 if a >= 1 else 3
        return f"{v:.{digits}f}{suffix}"

    def scaled(v, steps, base=1000):
        for factor, suffix in reversed(steps):
            if abs(v) >= factor:
                return number(v / factor, suffix)
        return number(v, steps[0][1])

    if unit == "percentunit":
        return number(value * 100, "%")
    if unit == "percent":
        return number(value, "%")
    if unit == "s":
        a = abs(value)
        if a == 0:
            return "0 s"
        if a < 1e-3:
            return number(value * 1e6, " µs")
        if a < 1:
            return number(value * 1e3, " ms")
        if a < 60:
            return number(value, " s")
        if a < 3600:
            return number(value / 60, " min")
        return number(value / 3600, " hour")
    if unit == "bytes":
        return scaled(value, [(1, " B"), (1024, " KiB"), (1024 ** 2, " MiB"), (1024 ** 3, " GiB"), (1024 ** 4, " TiB")])
    short = [(1, ""), (1e3, " K"), (1e6, " Mil"), (1e9, " Bil")]
    if unit == "reqps":
        return scaled(value, [(1, " req/s"), (1e3, " K req/s"), (1e6, " Mil req/s")])
    if unit == "ops":
        return scaled(value, [(1, " ops/s"), (1e3, " K ops/s"), (1e6, " Mil ops/s")])
    if unit == "x":
        return number(value, "x")
    return scaled(value, short)


def threshold_colour(value, thresholds):
    steps = (thresholds or {}).get("steps") or [{"color": "green", "value": None}]
    chosen = steps[0]["color"]
    for step in steps:
        if step.get("value") is None or (value is not None and value >= step["value"]):
            chosen = step["color"]
    return colour(chosen)


def mapped(value, mappings):
    """(text, colour) of a value mapping that applies, else None."""
    for mapping in mappings or []:
        if mapping.get("type") == "value" and value is not None:
            key = str(int(value)) if value == int(value) else str(value)
            hit = mapping.get("options", {}).get(key)
            if hit:
                return hit.get("text", key), colour(hit.get("color")) if hit.get("color") else None
        if mapping.get("type") == "range" and value is not None:
            o = mapping.get("options", {})
            if (o.get("from") is None or value >= o["from"]) and (o.get("to") is None or value <= o["to"]):
                r = o.get("result", {})
                return r.get("text", str(value)), colour(r.get("color")) if r.get("color") else None
    return None


REDUCERS = {
    "lastNotNull": lambda vs: vs[-1] if vs else None,
    "last": lambda vs: vs[-1] if vs else None,
    "firstNotNull": lambda vs: vs[0] if vs else None,
    "max": lambda vs: max(vs) if vs else None,
    "min": lambda vs: min(vs) if vs else None,
    "mean": lambda vs: sum(vs) / len(vs) if vs else None,
    "sum": lambda vs: sum(vs) if vs else None,
}
CALC_NAMES = {"lastNotNull": "Last *", "last": "Last", "max": "Max", "min": "Min", "mean": "Mean", "sum": "Total",
              "firstNotNull": "First *"}


def reduce_values(values, calc):
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return REDUCERS.get(calc, REDUCERS["lastNotNull"])(finite)


# --------------------------------------------------------------------------- data

class Series:
    def __init__(self, name, labels, points, ref):
        self.name, self.labels, self.points, self.ref = name, labels, points, ref

    @property
    def values(self):
        return [v for _, v in self.points]


def legend(fmt, labels):
    if fmt and fmt != "__auto":
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)
    name = labels.get("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{inner}}}" if inner or not name else name


def number_or_nan(text):
    try:
        return float(text)
    except ValueError:
        return float("nan")


class PanelData:
    def __init__(self, panel, variables, prometheus, start, end, rewrite=None):
        self.panel = panel
        self.queries = []     # (refId, resolved expr, instant)
        self.series = []
        self.interval = variables.interval_for(panel)
        step = self.interval
        for target in panel.get("targets", []):
            if target.get("hide") or not target.get("expr"):
                continue
            expr = variables.substitute(rewrite(target["expr"]) if rewrite else target["expr"], self.interval)
            instant = bool(target.get("instant")) and not target.get("range")
            self.queries.append((target.get("refId", ""), expr, instant))
            if instant:
                for r in prometheus.query(expr, end):
                    t, v = r["value"]
                    self.series.append(Series(legend(target.get("legendFormat"), r["metric"]), r["metric"],
                                              [(float(t), number_or_nan(v))], target.get("refId")))
            else:
                for r in prometheus.query_range(expr, start, end, step):
                    self.series.append(Series(legend(target.get("legendFormat"), r["metric"]), r["metric"],
                                              [(float(t), number_or_nan(v)) for t, v in r["values"]], target.get("refId")))

    def why_empty(self):
        """Why a panel drew nothing: a panel of only failure (or alert) queries is empty
        when nothing failed; any other empty panel is a query that matched nothing."""
        exprs = [expr for _, expr, _ in self.queries]
        if exprs and all("ALERTS" in e for e in exprs):
            return "no alert was firing in the range"
        if exprs and all(re.search(r"_failed_total|_errors_total|status=~\"5\.\.\"", e) for e in exprs):
            return "no failures in the range"
        return "no series matched in the range"


# --------------------------------------------------------------------------- rendering

def esc(text):
    return html.escape(str(text), quote=True)


def overrides_for(panel, series_name):
    props = {}
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        matcher = override.get("matcher", {})
        hit = ((matcher.get("id") == "byName" and matcher.get("options") == series_name)
               or (matcher.get("id") == "byRegexp" and re.fullmatch(matcher.get("options", ""), series_name)))
        if hit:
            for p in override.get("properties", []):
                props[p["id"]] = p.get("value")
    return props


def series_style(panel, series, index):
    props = overrides_for(panel, series.name)
    stroke = PALETTE[index % len(PALETTE)]
    c = props.get("color")
    if isinstance(c, dict) and c.get("mode") == "fixed":
        stroke = colour(c.get("fixedColor"))
    dash = ""
    line = props.get("custom.lineStyle")
    if isinstance(line, dict) and line.get("fill") in ("dash", "dot"):
        dash = " ".join(str(d) for d in line.get("dash") or [10, 10])
    return stroke, dash


def nice_ticks(low, high, count=5):
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks, t = [], first
    while t <= high + step * 0.001:
        ticks.append(round(t, 12))
        t += step
    return ticks


def time_ticks(start, end, count=6):
    span = end - start
    step = next((s for s in NICE_STEPS if s >= span / count and s >= 1), NICE_STEPS[-1])
    first = math.ceil(start / step) * step
    ticks, t = [], first
    while t <= end:
        ticks.append(t)
        t += step
    fmt = "%H:%M:%S" if step < 60 else "%H:%M" if span < 86400 * 2 else "%m-%d %H:%M"
    return [(t, datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(fmt)) for t in ticks]


def render_timeseries(data, start, end, shades):
    panel = data.panel
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    unit, decimals = defaults.get("unit"), defaults.get("decimals")
    custom = defaults.get("custom", {})
    bars = custom.get("drawStyle") == "bars"
    stacked = (custom.get("stacking") or {}).get("mode") == "normal"
    width = panel["gridPos"]["w"] * PIXELS_PER_COLUMN
    height = max(90, panel["gridPos"]["h"] * ROW_PIXELS - 36 - 18 * min(len(data.series), 4))
    left, right, top, bottom = 62, 10, 8, 20
    plot_w, plot_h = width - left - right, height - top - bottom

    step = data.interval
    if bars and stacked:
        totals = {}
        stacks = []
        for s in data.series:
            base = [totals.get(t, 0.0) for t, _ in s.points]
            for t, v in s.points:
                if not math.isnan(v):
                    totals[t] = totals.get(t, 0.0) + v
            stacks.append(base)
        values = list(totals.values()) or [0]
    else:
        values = [v for s in data.series for v in s.values if not math.isnan(v) and not math.isinf(v)] or [0]
    low = defaults.get("min") if defaults.get("min") is not None else min(0.0, min(values))
    high = defaults.get("max") if defaults.get("max") is not None else max(values)
    if high <= low:
        high = low + (abs(low) or 1)
    ticks = nice_ticks(low, high * 1.05 if defaults.get("max") is None else high)
    low, high = min(low, ticks[0]), max(high, ticks[-1])

    def x(t):
        return left + (t - start) / (end - start) * plot_w

    def y(v):
        return top + plot_h - (v - low) / (high - low) * plot_h

    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{esc(panel["title"])}">']
    for a, b in shades:
        a, b = max(a, start), min(b, end)
        if b > a:
            out.append(f'<rect class="shade" x="{x(a):.1f}" y="{top}" width="{max(1.0, x(b) - x(a)):.1f}" height="{plot_h}"/>')
    for t in ticks:
        out.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
                   f'<text class="axis" x="{left - 4}" y="{y(t) + 3:.1f}" text-anchor="end">{esc(fmt_value(t, unit, decimals))}</text>')
    for t, label in time_ticks(start, end):
        out.append(f'<line class="grid" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{top + plot_h}"/>'
                   f'<text class="axis" x="{x(t):.1f}" y="{height - 5}" text-anchor="middle">{esc(label)}</text>')
    if (custom.get("thresholdsStyle") or {}).get("mode") in ("line", "line+area", "dashed"):
        for s in (defaults.get("thresholds") or {}).get("steps", []):
            if s.get("value") is not None and low <= s["value"] <= high:
                out.append(f'<line class="threshold" stroke="{colour(s["color"])}" x1="{left}" x2="{left + plot_w}" '
                           f'y1="{y(s["value"]):.1f}" y2="{y(s["value"]):.1f}"><title>threshold {esc(fmt_value(s["value"], unit, decimals))}</title></line>')
    bar_w = max(1.0, step / (end - start) * plot_w * 0.8)
    for i, s in enumerate(data.series):
        stroke, dash = series_style(panel, s, i)
        if bars:
            base = stacks[i] if stacked else [0.0] * len(s.points)
            for (t, v), b in zip(s.points, base):
                if math.isnan(v) or v == 0:
                    continue
                out.append(f'<rect x="{x(t) - bar_w / 2:.1f}" y="{y(b + v):.1f}" width="{bar_w:.1f}" '
                           f'height="{max(0.5, y(b) - y(b + v)):.1f}" fill="{stroke}"/>')
            continue
        segments, current, previous = [], [], None
        for t, v in s.points:
            if math.isnan(v) or math.isinf(v) or (previous is not None and t - previous > step * 1.5):
                if current:
                    segments.append(current)
                current = []
            if not (math.isnan(v) or math.isinf(v)):
                current.append(f"{x(t):.1f},{y(min(max(v, low), high)):.1f}")
            previous = t
        if current:
            segments.append(current)
        for segment in segments:
            if len(segment) == 1:
                cx, cy = segment[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="1.5" fill="{stroke}"/>')
            else:
                dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
                out.append(f'<polyline fill="none" stroke="{stroke}" stroke-width="1.5"{dash_attr} points="{" ".join(segment)}"/>')
    out.append(f'<rect class="frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/></svg>')

    calcs = panel.get("options", {}).get("legend", {}).get("calcs") or []
    rows = []
    for i, s in enumerate(data.series):
        stroke, dash = series_style(panel, s, i)
        cells = "".join(f"<td>{esc(fmt_value(reduce_values(s.values, c), unit, decimals))}</td>" for c in calcs)
        rows.append(f'<tr><td><span class="swatch" style="background:{stroke}"></span>{esc(s.name)}</td>{cells}</tr>')
    head = "".join(f"<th>{esc(CALC_NAMES.get(c, c))}</th>" for c in calcs)
    out.append(f'<table class="legend"><thead><tr><th>Name</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    return "".join(out)


def reduced(data):
    panel = data.panel
    calc = (panel.get("options", {}).get("reduceOptions", {}).get("calcs") or ["lastNotNull"])[0]
    return [(s, reduce_values(s.values, calc)) for s in data.series]


def render_stat(data):
    panel = data.panel
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    options = panel.get("options", {})
    background = options.get("colorMode", "value") == "background"
    show_name = options.get("textMode", "auto") in ("value_and_name", "auto") and len(data.series) > 1 \
        or options.get("textMode") == "value_and_name"
    cells = []
    for s, value in reduced(data):
        hit = mapped(value, defaults.get("mappings"))
        text = hit[0] if hit else fmt_value(value, defaults.get("unit"), defaults.get("decimals"))
        tint = (hit[1] if hit and hit[1] else None) or threshold_colour(value, defaults.get("thresholds"))
        style = f"background:{tint};color:#111" if background else f"color:{tint}"
        name = f'<span class="stat-name">{esc(s.name)}</span>' if show_name else ""
        cells.append(f'<div class="stat" style="{style}">{name}<span class="stat-value">{esc(text)}</span></div>')
    return f'<div class="stats">{"".join(cells)}</div>'


def fraction(value, low, high):
    """Where value lies between low and high, clamped to 0..1 (gauges and bar gauges)."""
    return 0.0 if value is None else min(1.0, max(0.0, (value - low) / ((high - low) or 1)))


def render_gauge(data):
    defaults = data.panel.get("fieldConfig", {}).get("defaults", {})
    low, high = defaults.get("min", 0), defaults.get("max", 100 if defaults.get("unit") == "percent" else 1)
    cells = []
    for s, value in reduced(data):
        share = fraction(value, low, high)
        tint = threshold_colour(value, defaults.get("thresholds"))

        def point(fraction, radius=80):
            angle = math.pi * (1 - fraction)
            return 100 + radius * math.cos(angle), 100 - radius * math.sin(angle)
        x0, y0 = point(0)
        x1, y1 = point(share)
        x2, y2 = point(1)
        arc = (f'<path d="M{x0:.1f},{y0:.1f} A80,80 0 0 1 {x2:.1f},{y2:.1f}" class="gauge-track"/>'
               + (f'<path d="M{x0:.1f},{y0:.1f} A80,80 0 0 1 {x1:.1f},{y1:.1f}" stroke="{tint}" class="gauge-bar"/>' if share > 0 else ""))
        text = fmt_value(value, defaults.get("unit"), defaults.get("decimals"))
        cells.append(f'<div class="gauge"><svg viewBox="0 0 200 120" role="img" aria-label="{esc(s.name)}">{arc}'
                     f'<text x="100" y="100" text-anchor="middle" class="gauge-value" fill="{tint}">{esc(text)}</text></svg>'
                     f'<div class="stat-name">{esc(s.name)}</div></div>')
    return f'<div class="stats">{"".join(cells)}</div>'


def render_bargauge(data):
    defaults = data.panel.get("fieldConfig", {}).get("defaults", {})
    low, high = defaults.get("min", 0), defaults.get("max", 1)
    rows = []
    for s, value in reduced(data):
        share = fraction(value, low, high)
        tint = threshold_colour(value, defaults.get("thresholds"))
        rows.append(f'<div class="bar-row"><span class="bar-name">{esc(s.name)}</span>'
                    f'<span class="bar-track"><span class="bar-fill" style="width:{share * 100:.1f}%;background:{tint}"></span></span>'
                    f'<span class="bar-value" style="color:{tint}">{esc(fmt_value(value, defaults.get("unit"), defaults.get("decimals")))}</span></div>')
    return f'<div class="bars">{"".join(rows)}</div>'


def render_table(data):
    defaults = data.panel.get("fieldConfig", {}).get("defaults", {})
    labels = sorted({k for s in data.series for k in s.labels if k != "__name__"})
    calc = "lastNotNull"
    for t in data.panel.get("transformations", []):
        if t.get("id") == "reduce":
            calc = (t.get("options", {}).get("reducers") or [calc])[0]
    rows = sorted(data.series, key=lambda s: -(reduce_values(s.values, calc) or 0))
    head = "".join(f"<th>{esc(label)}</th>" for label in labels) + "<th>Value</th>"
    body = "".join("<tr>" + "".join(f"<td>{esc(s.labels.get(label, ''))}</td>" for label in labels)
                   + f"<td>{esc(fmt_value(reduce_values(s.values, calc), defaults.get('unit'), defaults.get('decimals')))}</td></tr>"
                   for s in rows)
    return f'<table class="grid-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


RENDERERS = {"stat": render_stat, "gauge": render_gauge, "bargauge": render_bargauge, "table": render_table}

STYLE = """
body{margin:0;background:#111217;color:#ccccdc;font:13px/1.35 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
header{padding:10px 16px;border-bottom:1px solid #2c2e33}
header h1{font-size:18px;margin:0 0 4px}
header p{margin:2px 0;color:#9fa1a8}
.dash{display:grid;grid-template-columns:repeat(24,minmax(0,1fr));grid-auto-rows:30px;gap:8px;padding:8px 16px 24px}
.panel{background:#181b1f;border:1px solid #2c2e33;border-radius:3px;padding:4px 8px;overflow:auto;min-width:0}
.panel h2{font-size:13px;font-weight:500;margin:0 0 4px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.panel .desc{font-size:11px;color:#8e9099;margin:0 0 4px}
.panel details{font-size:11px;color:#8e9099}
.panel code{white-space:pre-wrap;word-break:break-all}
.nodata{color:#9fa1a8;padding:16px;text-align:center}
svg text{font-size:10px}
.axis{fill:#8e9099}.grid{stroke:#2c2e33;stroke-width:1}.frame{fill:none;stroke:#34373d}
.threshold{stroke-width:1;stroke-dasharray:6 4}
.shade{fill:rgba(242,73,92,.16)}
.legend{width:100%;border-collapse:collapse;font-size:11px}
.legend td,.legend th{padding:1px 6px;text-align:right;white-space:nowrap}
.legend td:first-child,.legend th:first-child{text-align:left;width:99%}
.swatch{display:inline-block;width:12px;height:3px;margin:0 6px 3px 0;vertical-align:middle}
.stats{display:flex;flex-wrap:wrap;gap:6px;height:calc(100% - 24px)}
.stat{flex:1 1 120px;display:flex;flex-direction:column;align-items:center;justify-content:center;border-radius:2px;padding:4px}
.stat-name{font-size:12px}.stat-value{font-size:22px;font-weight:500}
.gauge{flex:1 1 160px;text-align:center}.gauge svg{width:auto;max-width:100%;height:170px}.gauge-track{fill:none;stroke:#2c2e33;stroke-width:16}
.gauge-bar{fill:none;stroke-width:16}.gauge-value{font-size:24px}
.bars{display:flex;flex-direction:column;gap:4px}
.bar-row{display:flex;align-items:center;gap:8px}.bar-name{width:38%;font-size:12px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bar-track{flex:1;height:14px;background:#2c2e33}.bar-fill{display:block;height:100%}.bar-value{width:70px;text-align:right}
.grid-table{width:100%;border-collapse:collapse;font-size:12px}
.grid-table th,.grid-table td{border-bottom:1px solid #2c2e33;padding:3px 6px;text-align:left}
"""


# Nothing but the file itself: no script runs, nothing is fetched (the browser enforces it).
CSP = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
       'img-src data:; script-src \'none\'">')


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class Snapshot:
    """One dashboard rendered over [start, end]."""

    def __init__(self, dashboard, prometheus, start, end, chosen=None, shades=(), scrape_interval=None, rewrite=None):
        """rewrite: applied to each query before its variables are substituted (the alert
        tour divides the literal windows, as it divides its rules' windows)."""
        if end <= start:
            raise SnapshotError("the range is empty: --to must come after --from")
        self.dashboard = dashboard
        self.start, self.end = start, end
        self.scrape = scrape_interval or prometheus.scrape_interval()
        self.variables = Variables(dashboard, prometheus, start, end, self.scrape, chosen)
        self.shades = list(shades)
        self.annotation_shades = []
        for a in dashboard.get("annotations", {}).get("list", []):
            if a.get("expr") and a.get("enable", True):
                step = parse_duration(a.get("step") or "15s")
                step = max(self.scrape, min(step, (end - start) / 200))
                expr = self.variables.substitute(rewrite(a["expr"]) if rewrite else a["expr"], step)
                for r in prometheus.query_range(expr, start, end, step):
                    self.annotation_shades += self.runs([float(t) for t, _ in r["values"]], step)
        self.panels = []
        for panel in sorted(dashboard.get("panels", []), key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
            if panel.get("type") == "row":
                continue
            self.panels.append(PanelData(panel, self.variables, prometheus, start, end, rewrite))

    @staticmethod
    def runs(times, step):
        out, first, last = [], None, None
        for t in times:
            if last is None or t - last > step * 1.5:
                if first is not None:
                    out.append((first, last + step))
                first = t
            last = t
        if first is not None:
            out.append((first, last + step))
        return out

    def panel_html(self, data):
        panel = data.panel
        g = panel["gridPos"]
        style = f'grid-column:{g["x"] + 1} / span {g["w"]};grid-row:{g["y"] + 1} / span {g["h"]}'
        kind = panel.get("type")
        if not data.series:
            body = f'<div class="nodata">No data: {esc(data.why_empty())}</div>'
        elif kind == "timeseries":
            body = render_timeseries(data, self.start, self.end, self.shades + self.annotation_shades)
        elif kind in RENDERERS:
            body = RENDERERS[kind](data)
        else:
            body = f'<div class="nodata">Panel type {esc(kind)} is not rendered by the snapshot.</div>'
        queries = "".join(f"<div>{esc(ref)}{' (instant)' if instant else ''}: <code>{esc(expr)}</code></div>"
                          for ref, expr, instant in data.queries)
        return (f'<section class="panel" data-panel-id="{panel.get("id")}" data-kind="{esc(kind)}" '
                f'data-series="{len(data.series)}" style="{style}">'
                f'<h2 title="{esc(panel.get("description", ""))}">{esc(panel.get("title", ""))}</h2>{body}'
                f'<details><summary>Queries (step {esc(duration_text(data.interval))})</summary>{queries}</details></section>')

    def html(self, heading_extra=""):
        d = self.dashboard
        selected = ", ".join(f"{name} = {value}" for name, value in self.variables.shown.items() if name != "datasource")
        shaded = ""
        if self.shades:
            shaded = "<p>Shaded: " + ", ".join(f"{utc(a)} – {utc(b)}" for a, b in self.shades) + "</p>"
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">" + CSP +
                f"<title>{esc(d.get('title', d.get('uid')))} — snapshot</title><style>{STYLE}</style></head><body>"
                f"<header><h1>{esc(d.get('title', ''))}</h1>"
                f"<p>Snapshot of the provisioned dashboard <b>{esc(d.get('uid'))}</b> from {esc(utc(self.start))} to {esc(utc(self.end))}"
                f" ({esc(duration_text(round(self.end - self.start)))}); scrape interval {esc(duration_text(self.scrape))}; "
                f"variables: {esc(selected or 'none')}.</p>{shaded}{heading_extra}"
                "<p>A record of what Grafana would have drawn from the same queries; red shading marks injected faults.</p></header>"
                f"<main class=\"dash\">{''.join(self.panel_html(p) for p in self.panels)}</main></body></html>\n")


def load_dashboard(path):
    with open(path) as f:
        dashboard = json.load(f)
    if "panels" not in dashboard or "uid" not in dashboard:
        raise SnapshotError(f"{path} is not a Grafana dashboard (no panels or uid)")
    return dashboard


def parse_time(text, now=None):
    """now, now-30m, an epoch number or an ISO 8601 time."""
    now = time.time() if now is None else now
    m = re.fullmatch(r"now(?:-(\S+))?", text)
    if m:
        return now - (parse_duration(m.group(1)) if m.group(1) else 0)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SnapshotError(f"not a time: {text!r} (now, now-30m, epoch seconds or ISO 8601)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.timestamp()
