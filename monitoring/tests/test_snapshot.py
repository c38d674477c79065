"""Checks of the dashboard snapshot renderer (scripts/lib/snapshot.py), python3 stdlib only.

Run by scripts/check-monitoring. The renderer reads the provisioned dashboards as they
are; Prometheus is replaced by a recorder that answers every query with a series, so the
checks see exactly which queries the snapshot sends. The live rendering against a
Prometheus that scraped the real fleet is in the alert tour (scripts/tour).
"""
import glob
import math
import os
import re
import sys
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
import snapshot  # noqa: E402
from test_monitoring import OVERVIEW_TITLES  # noqa: E402

START, END = 1_700_000_000.0, 1_700_001_800.0  # 30 minutes


class RecordingPrometheus:
    """Answers like Prometheus: a ramp for range queries, one sample for instant ones."""

    def __init__(self, empty=()):
        self.sent = []
        self.empty = empty

    def scrape_interval(self):
        return 15.0

    def label_values(self, label, selector, start, end):
        self.sent.append(("labels", label, selector))
        return {"service": ["api-gateway", "billing-service"], "tenant_id": ["t-1", "t.2"]}.get(label, [])

    def query_range(self, expr, start, end, step):
        self.sent.append(("range", expr, step))
        if any(e in expr for e in self.empty):
            return []
        points = int((end - start) // step) + 1
        return [{"metric": {"service": "api-gateway", "severity": "critical", "operation": "hit"},
                 "values": [[start + i * step, str(0.1 + i / points)] for i in range(points)]}]

    def query(self, expr, at):
        self.sent.append(("instant", expr))
        return [{"metric": {"alertname": "Watchdog", "tenant_id": "t-1"}, "value": [at, "1"]}]


def dashboards():
    return {os.path.basename(p): snapshot.load_dashboard(p) for p in sorted(glob.glob(os.path.join(snapshot.DASHBOARD_DIR, "*.json")))}


class SnapshotTest(unittest.TestCase):
    def test_every_provisioned_dashboard_renders_with_every_variable_resolved(self):
        for name, dashboard in dashboards().items():
            prometheus = RecordingPrometheus()
            shot = snapshot.Snapshot(dashboard, prometheus, START, END)
            text = shot.html()
            queries = [q[1] for q in prometheus.sent if q[0] != "labels"]
            self.assertTrue(queries, name)
            for expr in queries:
                self.assertNotIn("$", expr, f"{name}: a variable was left in {expr}")
            for panel in shot.panels:
                self.assertTrue(panel.series, f"{name}: {panel.panel['title']} drew nothing from a series")
            self.assertIsNone(re.search(r"(?:src|href)\s*=|https?://", text), f"{name}: the file refers to something outside it")
            self.assertEqual(text.count('<section class="panel"'), len([p for p in dashboard["panels"] if p["type"] != "row"]))

    def test_overview_panels_come_in_the_documents_order_and_grid(self):
        dashboard = dashboards()["cloudbill-overview.json"]
        text = snapshot.Snapshot(dashboard, RecordingPrometheus(), START, END).html()
        titles = re.findall(r'<section class="panel"[^>]*>\s*<h2[^>]*>(.*?)</h2>', text)
        self.assertEqual([t.replace("&amp;", "&") for t in titles], OVERVIEW_TITLES)
        self.assertIn("grid-column:1 / span 24;grid-row:1 / span 4", text)  # Service Health Status

    def test_grafana_intervals(self):
        # 30 minutes over a 12-column panel (600 points): 3 s raw, never below the scrape interval.
        dashboard = dashboards()["cloudbill-overview.json"]
        variables = snapshot.Variables(dashboard, RecordingPrometheus(), START, END, 15.0)
        panel = {"gridPos": {"w": 12, "h": 8, "x": 0, "y": 0}}
        self.assertEqual(variables.interval_for(panel), 15.0)
        self.assertEqual(variables.builtins(15.0)["__rate_interval"], "1m")  # max(15s + 15s, 4 x 15s)
        self.assertEqual(variables.builtins(15.0)["__range"], "30m")
        week = snapshot.Variables(dashboard, RecordingPrometheus(), START, START + 7 * 86400, 15.0)
        self.assertEqual(week.interval_for(panel), 900.0)  # 1008 s raw: Grafana rounds to 15m
        self.assertEqual(week.builtins(900.0)["__rate_interval"], "915s")
        self.assertEqual(snapshot.round_interval(0.3), 0.3)
        self.assertEqual(snapshot.round_interval(40), 30)
        scaled = snapshot.Variables(dashboard, RecordingPrometheus(), START, START + 120, 0.5)
        self.assertEqual(scaled.builtins(0.5)["__rate_interval"], "2s")

    def test_all_and_chosen_values(self):
        dashboard = dashboards()["cloudbill-overview.json"]
        every = snapshot.Variables(dashboard, RecordingPrometheus(), START, END, 15.0)
        self.assertEqual(every.resolved["service"], ".*")  # allValue
        one = snapshot.Variables(dashboard, RecordingPrometheus(), START, END, 15.0, {"service": "billing-service", "tenant": "t.2,t-1"})
        self.assertEqual(one.resolved["service"], "billing-service")
        self.assertEqual(one.resolved["tenant"], "(t\\\\.2|t-1)")  # regex-escaped for a PromQL string, as Grafana does
        self.assertEqual(one.substitute('x{service=~"$service"}[$__rate_interval]', 15.0), 'x{service=~"billing-service"}[1m]')
        with self.assertRaises(snapshot.SnapshotError):
            one.substitute("x[$nope]", 15.0)

    def test_empty_panels_say_why(self):
        dashboard = dashboards()["cloudbill-overview.json"]
        shot = snapshot.Snapshot(dashboard, RecordingPrometheus(empty=("_failed_total",)), START, END)
        self.assertNotIn("No data", shot.html())  # the successes are drawn; only the failures are empty
        shot = snapshot.Snapshot(dashboard, RecordingPrometheus(empty=("cloudbill_payments_",)), START, END)
        self.assertIn("No data: no series matched in the range", shot.html())  # not a failures-only panel
        tenant = dashboards()["cloudbill-tenant.json"]
        shot = snapshot.Snapshot(tenant, RecordingPrometheus(empty=("db_errors_total",)), START, END)
        self.assertIn("No data: no failures in the range", shot.html())

    def test_units(self):
        f = snapshot.fmt_value
        self.assertEqual(f(0.0523, "percentunit"), "5.23%")
        self.assertEqual(f(2.5, "s"), "2.50 s")
        self.assertEqual(f(0.0042, "s"), "4.20 ms")
        self.assertEqual(f(3 * 1024 ** 2, "bytes"), "3 MiB")
        self.assertEqual(f(1530, "reqps"), "1.53 K req/s")
        self.assertEqual(f(float("nan"), "short"), "–")
        self.assertEqual(f(0.999, "percentunit", 3), "99.900%")
        self.assertTrue(math.isclose(snapshot.parse_duration("1h30m"), 5400))

    def test_fault_annotation_and_shades_are_drawn(self):
        dashboard = dashboards()["cloudbill-overview.json"]
        shot = snapshot.Snapshot(dashboard, RecordingPrometheus(), START, END, shades=[(START + 600, START + 900)])
        self.assertTrue(shot.annotation_shades)  # the injected-faults annotation query answered
        self.assertIn('class="shade"', shot.html())


if __name__ == "__main__":
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(
        unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__]))
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"snapshot-checks: passed={result.testsRun - bad - len(result.skipped)} failed={bad} skipped={len(result.skipped)}")
    sys.exit(0 if result.wasSuccessful() and not result.skipped else 1)
