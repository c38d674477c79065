"""Tests of scripts/timescale.py, the time-scaled copy of the monitoring config
(python3 stdlib only; run by scripts/check-monitoring):

    python3 monitoring/tests/test_timescale.py -v

The expected durations are computed here with this file's own parser and
arithmetic (fractions, its own site finder), not with the renderer's helpers, so a
renderer that scales the wrong token, misses one or rounds differently fails.
"""
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from fractions import Fraction

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MON = os.path.join(ROOT, "monitoring")
SCRIPT = os.path.join(ROOT, "scripts", "timescale.py")

_spec = importlib.util.spec_from_file_location("timescale", SCRIPT)
timescale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(timescale)

# ------------------------------------------------------------ independent oracle

UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000,
         "w": 604800000, "y": 31536000000}
DUR = r"(?:\d+(?:ms|[smhdwy]))+"


def ms_of(token):
    if token == "0":
        return 0
    assert re.fullmatch(DUR, token), token
    return sum(int(n) * UNITS[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", token))


def expected_ms(orig_ms, scale, floor_ms=0):
    q = Fraction(orig_ms) / Fraction(scale)
    r = int(q + Fraction(1, 2))                   # round half up (q >= 0)
    if r == 0 and q > 0:
        r = 1                                     # a non-zero duration stays >= 1ms
    return max(r, floor_ms)


def fmt(ms):
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


KEYS = {
    "prometheus": ("scrape_interval", "scrape_timeout", "evaluation_interval"),
    "rules": ("for", "keep_firing_for", "interval"),
    "alertmanager": ("group_wait", "group_interval", "repeat_interval", "resolve_timeout"),
}


def kind_of(relpath):
    if relpath.endswith("alertmanager.yml"):
        return "alertmanager"
    if relpath.endswith("prometheus.yml"):
        return "prometheus"
    return "rules"


def _blank(m):
    return " " * len(m.group())


def find_sites(text, kind):
    """[(line, start_col, end_col, token, what)] of every duration the renderer may
    change. what: "key:<name>", "range", "step" or "offset". A deliberately simple
    line-based finder: keys are `key: <duration>` lines (outside block scalars); PromQL is the text after
    `expr:` or the lines of its block scalar, with string literals and # comments
    blanked before looking for [..] and `offset`."""
    lines = text.split("\n")
    sites = []
    key_re = re.compile(r"^(\s*(?:-\s+)?(%s):\s+)(%s|0)\s*(#.*)?$" % ("|".join(KEYS[kind]), DUR))
    expr_re = re.compile(r"^(\s*(?:-\s+)?)expr:(.*)$")
    block_re = re.compile(r"^(\s*(?:-\s+)?)[\w.-]+:\s*[|>][-+0-9]*\s*$")
    i = 0
    while i < len(lines):
        b = block_re.match(lines[i])
        if b and not expr_re.match(lines[i]):
            # Block scalar of another key (annotations): its text is never a site.
            col = len(b.group(1))
            i += 1
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > col):
                i += 1
            continue
        m = key_re.match(lines[i])
        if m:
            sites.append((i, m.end(1), m.end(3), m.group(3), "key:" + m.group(2)))
        e = expr_re.match(lines[i]) if kind == "rules" else None
        if e:
            col = len(e.group(1))
            rest = e.group(2)
            if rest.strip()[:1] in ("|", ">"):
                chunk = []
                j = i + 1
                while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > col):
                    chunk.append((j, 0, lines[j]))
                    j += 1
            else:
                chunk, j = [(i, len(lines[i]) - len(rest), rest)], i + 1
            # Blank strings and comments over the whole expression (strings may not
            # span lines in PromQL, so per-line blanking is enough).
            for ln, off, src in chunk:
                clean = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', _blank, src)
                clean = re.sub(r"#.*", _blank, clean)
                for b in re.finditer(r"\[\s*(%s)\s*(?::\s*(%s)?\s*)?\]" % (DUR, DUR), clean):
                    sites.append((ln, off + b.start(1), off + b.end(1), b.group(1), "range"))
                    if b.group(2):
                        sites.append((ln, off + b.start(2), off + b.end(2), b.group(2), "step"))
                for o in re.finditer(r"(?<![\w:])offset\s+-?(%s)(?![\w])" % DUR, clean, re.I):
                    sites.append((ln, off + o.start(1), off + o.end(1), o.group(1), "offset"))
            i = j
            continue
        i += 1
    return sorted(sites)


def mask(text, sites):
    lines = text.split("\n")
    for ln, s, e, _, _ in sorted(sites, reverse=True):
        lines[ln] = lines[ln][:s] + "<DUR>" + lines[ln][e:]
    return lines


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def scrape_floor_ms(prom_text, scale):
    """4 x the largest scaled scrape_interval (global or any job)."""
    vals = [expected_ms(ms_of(m), scale) for m in
            re.findall(r"^\s*scrape_interval:\s*(\S+)", prom_text, re.M)]
    return 4 * max(vals)


def rendered_files(mon_dir):
    """Relative paths of the files the renderer scales."""
    rel = ["prometheus/prometheus.yml", "alertmanager/alertmanager.yml"]
    for sub in ("rules", "alerts"):
        rel += [f"prometheus/{sub}/{os.path.basename(p)}"
                for p in sorted(glob.glob(os.path.join(mon_dir, "prometheus", sub, "*.yml")))]
    return rel


def all_duration_tokens(text):
    """Every duration-looking token in the file, wherever it is (used to prove that
    nothing outside the sites changed)."""
    return re.findall(r"(?<![\w.])(?:%s)(?![\w])" % DUR, text)


# ------------------------------------------------------------ synthetic rules

SYNTHETIC_RULES = r'''# Synthetic rule file: only PromQL durations may change.
# A comment mentioning rate(x[5m]) offset 10m and for: 5m stays as it is.
groups:
  - name: synthetic
    interval: 1m
    rules:
      - record: x:rate5m
        expr: sum by (job) (rate(http_requests_total{path=~"/api/[5m]+", note='offset 10m'}[5m]))

      - record: x:rate30s
        expr: rate(http_requests_total[30s])

      - record: x:subquery_max
        expr: max_over_time(x:rate5m[1h:1m]) + min_over_time(x:rate5m[30m:])

      - record: x:block
        expr: |
          # PromQL comment: [5m] offset 10m is not scaled
          sum(rate(http_requests_total{le=~"1(\\.0)?", q=`[5m]`}[5m] offset 10m))
            /
          sum(rate(http_requests_total[1h] offset -10m))

      - alert: SyntheticFolded
        expr: >
          x:rate5m offset 1h30m
          > 0
        for: 5m
        labels:
          severity: warning
          window: "[5m]"
        annotations:
          summary: "rate over [5m] compared with offset 10m"
          description: |
            for: 5m
            The [5m] rate is above 0 (offset 10m, interval: 1m).
'''

# The exact rendering at scale 30 with the real prometheus.yml (scrape 15s ->
# 500ms, api-gateway 10s -> 333ms, largest 500ms: floor 2s).
SYNTHETIC_EXPECTED_30 = {
    "    interval: 1m\n": "    interval: 2s\n",
    "'offset 10m'}[5m]))": "'offset 10m'}[10s]))",
    "rate(http_requests_total[30s])": "rate(http_requests_total[2s])",
    "[1h:1m]) + min_over_time(x:rate5m[30m:])": "[120s:2s]) + min_over_time(x:rate5m[60s:])",
    "q=`[5m]`}[5m] offset 10m))": "q=`[5m]`}[10s] offset 20s))",
    "[1h] offset -10m))": "[120s] offset -20s))",
    "x:rate5m offset 1h30m": "x:rate5m offset 180s",
    "\n        for: 5m\n": "\n        for: 10s\n",
}


class DurationFunctionsTest(unittest.TestCase):
    def test_parse(self):
        for text, secs in [("5m", 300), ("1h30m", 5400), ("500ms", 0.5), ("0s", 0), ("0", 0),
                           ("1d", 86400), ("2w", 1209600), ("1y", 31536000), ("1m30s500ms", 90.5)]:
            self.assertEqual(timescale.parse_duration(text), secs, text)
        for bad in ["", "5", "5x", "1m1h", "-5m", "5 m", "1.5h"]:
            with self.assertRaises(ValueError, msg=bad):
                timescale.parse_duration(bad)

    def test_format(self):
        for secs, text in [(140, "140s"), (10, "10s"), (0, "0s"), (0.5, "500ms"),
                           (10 / 30, "333ms"), (2.0, "2s"), (0.0004, "1ms")]:
            self.assertEqual(timescale.format_duration(secs), text, secs)

    def test_scale_duration(self):
        for text, scale, out in [("5m", 30, "10s"), ("70m", 30, "140s"), ("15s", 30, "500ms"),
                                 ("10s", 30, "333ms"), ("1h30m", 60, "90s"), ("0s", 30, "0s"),
                                 ("4h", 30, "480s"), ("5m", 1, "5m"), ("1h30m", 1, "1h30m"),
                                 ("20s", 3, "6667ms")]:
            self.assertEqual(timescale.scale_duration(text, scale), out, (text, scale))

    def test_bad_scale(self):
        for bad in [0, 0.5, -1, float("nan"), float("inf"), "30", None]:
            with self.assertRaises(ValueError, msg=repr(bad)) as cm:
                timescale.scale_duration("5m", bad)
            self.assertIn("scale", str(cm.exception))
            with tempfile.TemporaryDirectory() as out, self.assertRaises(ValueError):
                timescale.render(MON, out, bad)


class RenderRealFilesTest(unittest.TestCase):
    """The real monitoring/ files at several scales."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="timescale-test-")
        cls.out, cls.facts = {}, {}
        for scale in (1, 30, 60, 100):
            out = os.path.join(cls.tmp, f"x{scale}")
            cls.out[scale] = out
            cls.facts[scale] = timescale.render(MON, out, scale)
        cls.prom_text = read(os.path.join(MON, "prometheus", "prometheus.yml"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_copy(self, mon_dir, out, scale):
        """Masked text identical; every site has exactly its expected value; the
        number of changed tokens equals the number of sites that had to change."""
        floor = scrape_floor_ms(read(os.path.join(mon_dir, "prometheus", "prometheus.yml")), scale)
        total_sites = 0
        for rel in rendered_files(mon_dir):
            with self.subTest(file=rel, scale=scale):
                src, dst = read(os.path.join(mon_dir, rel)), read(os.path.join(out, rel))
                kind = kind_of(rel)
                s_sites, d_sites = find_sites(src, kind), find_sites(dst, kind)
                self.assertEqual([w for *_, w in s_sites], [w for *_, w in d_sites],
                                 "the same duration sites, in the same order")
                self.assertEqual(mask(src, s_sites), mask(dst, d_sites),
                                 "identical apart from the duration sites")
                should_change = changed = 0
                global_ms = expected_ms(ms_of(re.search(r"(?m)^  scrape_interval: (\S+)", src).group(1)), scale) if kind == "prometheus" else 0
                for (ln, _, _, old, what), (_, _, _, new, _) in zip(s_sites, d_sites):
                    want = fmt(expected_ms(ms_of(old), scale, floor if what == "range" else 0))
                    if what == "key:scrape_timeout":
                        # a tolerance: never below the scaled scrape interval, never above the original
                        want = fmt(min(ms_of(old), max(expected_ms(ms_of(old), scale), global_ms)))
                    self.assertEqual(new, want, f"line {ln + 1}: {what} {old} at scale {scale}")
                    should_change += want != old
                    changed += new != old
                self.assertEqual(changed, should_change)
                # Nothing outside the sites changed: a diff of all duration-looking
                # tokens of the files counts exactly the changed sites.
                a, b = all_duration_tokens(src), all_duration_tokens(dst)
                self.assertEqual(len(a), len(b))
                self.assertEqual(sum(x != y for x, y in zip(a, b)), changed)
                total_sites += len(s_sites)
        return total_sites

    def test_masked_copy_equals_source(self):
        for scale in (30, 60, 100):
            n = self.check_copy(MON, self.out[scale], scale)
            self.assertGreater(n, 100, "the real files have well over 100 duration sites")

    def test_known_values_at_scale_30(self):
        out = self.out[30]
        alerts = read(os.path.join(out, "prometheus", "alerts", "cloudbill-alerts.yml"))
        prom = read(os.path.join(out, "prometheus", "prometheus.yml"))
        am = read(os.path.join(out, "alertmanager", "alertmanager.yml"))
        http = read(os.path.join(out, "prometheus", "rules", "cloudbill-http.yml"))
        backends = read(os.path.join(out, "prometheus", "rules", "cloudbill-backends.yml"))
        self.assertNotIn("for: 5m", alerts)
        self.assertIn("        for: 10s\n", alerts)
        self.assertIn("(service:http_requests:rate5m offset 140s)", alerts)
        self.assertIn("(service:http_requests:rate1h offset 20s)", alerts)
        self.assertIn("rate(http_requests_total[10s])", http)
        self.assertIn("avg_over_time(service:http_requests:rate5m[120s])", http)
        self.assertIn("avg_over_time(db_pool_active_connections[2s])", backends)
        self.assertIn("- record: service:http_requests:rate5m\n", http)   # names untouched
        self.assertIn('{status=~"5.."}', http)
        self.assertIn("global:\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\n"
                      "  evaluation_interval: 500ms\n", prom)
        self.assertIn("  - job_name: api-gateway\n    scrape_interval: 333ms\n", prom)
        self.assertIn("Retention (30d)", prom)                             # comment untouched
        for line in ["resolve_timeout: 10s", "group_wait: 1s", "group_interval: 10s",
                     "repeat_interval: 480s", "group_wait: 0s", "repeat_interval: 2s",
                     "group_wait: 333ms", "repeat_interval: 1440s"]:
            self.assertIn(line, am)
        self.assertEqual(self.facts[30]["scrape_interval_s"], 0.5)
        self.assertEqual(self.facts[30]["evaluation_interval_s"], 0.5)
        self.assertEqual(self.facts[30]["min_range_window_s"], 2.0)
        self.assertIn("prometheus/alerts/cloudbill-alerts.yml", self.facts[30]["files"])

    def test_scale_1_is_byte_identical(self):
        out = self.out[1]
        src_files = rendered_files(MON) + [
            "prometheus/targets/" + os.path.basename(p)
            for p in glob.glob(os.path.join(MON, "prometheus", "targets", "*"))]
        for rel in src_files:
            with open(os.path.join(MON, rel), "rb") as a, open(os.path.join(out, rel), "rb") as b:
                self.assertEqual(a.read(), b.read(), rel)
        self.assertEqual(self.facts[1]["scrape_interval_s"], 15)
        self.assertEqual(self.facts[1]["min_range_window_s"], 60)

    def test_targets_copied_verbatim(self):
        for p in glob.glob(os.path.join(MON, "prometheus", "targets", "*")):
            self.assertEqual(read(p), read(os.path.join(self.out[30], "prometheus", "targets",
                                                        os.path.basename(p))))

    def test_window_floor_at_scale_100(self):
        facts = self.facts[100]
        self.assertEqual(facts["scrape_interval_s"], 0.15)
        self.assertAlmostEqual(facts["min_range_window_s"], 0.6)
        backends = read(os.path.join(self.out[100], "prometheus", "rules", "cloudbill-backends.yml"))
        self.assertIn("rate(db_query_duration_seconds_count[3s])", backends)      # 5m / 100
        self.assertIn("avg_over_time(db_pool_active_connections[600ms])", backends)  # 1m/100 = 4x150ms
        alerts = read(os.path.join(self.out[100], "prometheus", "alerts", "cloudbill-alerts.yml"))
        self.assertIn("for: 600ms", alerts)                                       # 1m / 100, no floor
        self.assertIn("offset 42s", alerts)                                       # 70m / 100

    @unittest.skipUnless(shutil.which("promtool"), "promtool not on PATH: rendered config not checked")
    def test_promtool_accepts_rendered_config(self):
        for scale in (30, 60):
            prom_dir = os.path.join(self.out[scale], "prometheus")
            r = subprocess.run(["promtool", "check", "config", os.path.join(prom_dir, "prometheus.yml")],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            files = len(glob.glob(os.path.join(MON, "prometheus", "rules", "*.yml")) + glob.glob(os.path.join(MON, "prometheus", "alerts", "*.yml")))
            self.assertIn(f"{files} rule files found", r.stdout)
            for f in sorted(glob.glob(os.path.join(prom_dir, "rules", "*.yml")) +
                            glob.glob(os.path.join(prom_dir, "alerts", "*.yml"))):
                r = subprocess.run(["promtool", "check", "rules", f], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, f"{f}:\n{r.stdout}{r.stderr}")

    @unittest.skipUnless(shutil.which("amtool"), "amtool not on PATH: rendered alertmanager.yml not checked")
    def test_amtool_accepts_rendered_config(self):
        for scale in (30, 60):
            f = os.path.join(self.out[scale], "alertmanager", "alertmanager.yml")
            r = subprocess.run(["amtool", "check-config", f], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class SyntheticRulesTest(unittest.TestCase):
    """A rule file with durations in strings, comments, names and annotations."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="timescale-synth-")
        cls.mon = os.path.join(cls.tmp, "monitoring")
        shutil.copytree(os.path.join(MON, "prometheus", "targets"),
                        os.path.join(cls.mon, "prometheus", "targets"))
        shutil.copy(os.path.join(MON, "prometheus", "prometheus.yml"),
                    os.path.join(cls.mon, "prometheus", "prometheus.yml"))
        os.makedirs(os.path.join(cls.mon, "prometheus", "rules"))
        os.makedirs(os.path.join(cls.mon, "alertmanager"))
        shutil.copy(os.path.join(MON, "alertmanager", "alertmanager.yml"),
                    os.path.join(cls.mon, "alertmanager", "alertmanager.yml"))
        with open(os.path.join(cls.mon, "prometheus", "rules", "synthetic.yml"), "w") as f:
            f.write(SYNTHETIC_RULES)
        cls.out = {s: os.path.join(cls.tmp, f"x{s}") for s in (1, 30, 100)}
        for s, out in cls.out.items():
            timescale.render(cls.mon, out, s)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def rendered(self, scale):
        return read(os.path.join(self.out[scale], "prometheus", "rules", "synthetic.yml"))

    def test_exact_rendering_at_scale_30(self):
        want = SYNTHETIC_RULES
        for old, new in SYNTHETIC_EXPECTED_30.items():
            self.assertEqual(want.count(old), 1, old)
            want = want.replace(old, new)
        self.assertEqual(self.rendered(30), want)

    def test_masked_equal_and_site_count(self):
        sites = find_sites(SYNTHETIC_RULES, "rules")
        # interval, [5m], [30s], [1h:1m] (2), [30m:], block: [5m], offset 10m, [1h],
        # offset -10m; folded: offset 1h30m; for: 5m
        self.assertEqual(len(sites), 12, sites)
        for scale in (30, 100):
            RenderRealFilesTest.check_copy(self, self.mon, self.out[scale], scale)

    def test_untouched_text(self):
        out = self.rendered(30)
        for text in ['path=~"/api/[5m]+"', "note='offset 10m'", "q=`[5m]`", "- record: x:rate5m",
                     "# PromQL comment: [5m] offset 10m is not scaled", 'window: "[5m]"',
                     'summary: "rate over [5m] compared with offset 10m"',
                     "            for: 5m\n            The [5m] rate is above 0 (offset 10m, interval: 1m).",
                     "# A comment mentioning rate(x[5m]) offset 10m and for: 5m stays as it is."]:
            self.assertIn(text, out)

    def test_window_floor_at_scale_100(self):
        out = self.rendered(100)
        self.assertIn("rate(http_requests_total[600ms])", out)   # 30s/100 = 300ms -> 4 x 150ms
        self.assertIn("'offset 10m'}[3s]))", out)                # 5m/100
        self.assertIn("[36s:600ms])", out)                        # step not floored
        self.assertIn("offset -6s))", out)

    def test_scale_1_identical(self):
        self.assertEqual(self.rendered(1), SYNTHETIC_RULES)

    @unittest.skipUnless(shutil.which("promtool"), "promtool not on PATH: synthetic rules not checked")
    def test_promtool_accepts_synthetic(self):
        for scale in (1, 30):
            f = os.path.join(self.out[scale], "prometheus", "rules", "synthetic.yml")
            r = subprocess.run(["promtool", "check", "rules", f], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class RendererRobustnessTest(unittest.TestCase):
    def test_offset_inside_identifiers_and_labels(self):
        text = ("groups:\n  - name: g\n    rules:\n      - record: a:b\n"
                "        expr: my_offset_total{offset=\"5m\"} offset 5m + sum by (offset) (x[5m])\n")
        out = timescale.scale_rules_text(text, 30, 2000)
        self.assertIn('my_offset_total{offset="5m"} offset 10s + sum by (offset) (x[10s])', out)

    def test_label_named_for_is_not_scaled(self):
        text = ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n"
                "        for: 5m\n        labels:\n          for: 5m\n")
        out = timescale.scale_rules_text(text, 30, 2000)
        self.assertEqual(out, text.replace("        for: 5m\n        labels", "        for: 10s\n        labels"))

    def test_quoted_expr_is_refused(self):
        text = 'groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: "rate(x[5m])"\n'
        with self.assertRaises(ValueError):
            timescale.scale_rules_text(text, 30, 2000)


class CliTest(unittest.TestCase):
    def run_cli(self, *args):
        return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)

    def test_cli_prints_facts(self):
        with tempfile.TemporaryDirectory() as out:
            r = self.run_cli("--scale", "30", "--out", out, "--monitoring", MON)
            self.assertEqual(r.returncode, 0, r.stderr)
            facts = json.loads(r.stdout)
            self.assertEqual(facts["scale"], 30)
            self.assertEqual(facts["min_range_window_s"], 2.0)
            for rel in facts["files"]:
                self.assertTrue(os.path.isfile(os.path.join(out, rel)), rel)

    def test_cli_bad_arguments(self):
        with tempfile.TemporaryDirectory() as out:
            for args in (["--scale", "0.5", "--out", out], ["--scale", "nan", "--out", out],
                         ["--scale", "abc", "--out", out], ["--out", out],
                         ["--scale", "30", "--out", out, "--monitoring", os.path.join(out, "none")]):
                r = self.run_cli(*args)
                self.assertEqual(r.returncode, 2, args)
                self.assertEqual(r.stdout, "")
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


if __name__ == "__main__":
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(
        unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__]))
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"timescale-checks: passed={result.testsRun - bad - len(result.skipped)} failed={bad}"
          f" skipped={len(result.skipped)}")
    sys.exit(0 if result.wasSuccessful() else 1)
