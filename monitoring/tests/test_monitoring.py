"""Checks of CloudBill's monitoring configuration (python3 stdlib only).

Run by scripts/check-monitoring. The static checks read the files; the live checks
start a real Prometheus (/usr/bin/prometheus) on a free loopback port with a temporary
data directory and the real monitoring/prometheus/prometheus.yml, then ask it for its
targets, its loaded rules and every dashboard query.
"""
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MON = os.path.join(ROOT, "monitoring")
PROM_DIR = os.path.join(MON, "prometheus")
DASH_DIR = os.path.join(MON, "grafana", "provisioning", "dashboards")
DATASOURCE = os.path.join(MON, "grafana", "provisioning", "datasources", "prometheus.yml")
RUNBOOKS = os.path.join(ROOT, "docs", "runbooks.md")
DATASOURCE_UID = "cloudbill-prometheus"
RUNBOOK_BASE = "https://github.com/cloudbill/cloudbill/blob/main/docs/runbooks.md#"

APP_JOBS = {"api-gateway": 8080, "auth-service": 3001, "billing-service": 3002,
            "payment-service": 3003, "notification-service": 3004}
OVERVIEW_TITLES = [
    "Service Health Status", "HTTP Request Rate by Service", "HTTP Error Rate (5xx)",
    "HTTP Request Latency", "Database Connection Pool", "Database Query P95 Latency",
    "Redis Cache Hit/Miss Rate", "Cache Hit Ratio", "Memory Usage by Service",
    "CPU Usage by Service", "Payment Processing Rate", "Invoice Generation Rate",
    "Notification Delivery Rate",
]
SEVERITIES = {"critical", "warning", "info", "none"}

# The services' metric catalogue (docs: the colleague's Instrumentation module).
CATALOGUE = {
    "counter": ["http_requests_total", "db_errors_total", "redis_operations_total",
                "redis_errors_total", "cloudbill_payments_total",
                "cloudbill_payments_succeeded_total", "cloudbill_payments_failed_total",
                "cloudbill_invoices_generated_total", "cloudbill_invoices_failed_total",
                "cloudbill_notifications_sent_total", "cloudbill_notifications_failed_total",
                "process_cpu_seconds_total", "process_cpu_user_seconds_total",
                "process_cpu_system_seconds_total", "cloudbill_metric_tenants_folded_total"],
    "gauge": ["db_pool_total_connections", "db_pool_active_connections",
              "db_pool_idle_connections", "db_pool_waiting_requests",
              "process_start_time_seconds", "process_resident_memory_bytes",
              "process_virtual_memory_bytes", "process_heap_bytes", "process_open_fds",
              "process_max_fds", "nodejs_eventloop_lag_seconds", "cloudbill_fault_active"],
    "histogram": ["http_request_duration_seconds", "http_request_size_bytes",
                  "http_response_size_bytes", "db_query_duration_seconds",
                  "redis_operation_duration_seconds", "nodejs_gc_duration_seconds"],
}
# Prometheus's own series used by rules and dashboards.
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE", "prometheus_rule_evaluation_failures_total",
                     "prometheus_notifications_errors_total", "prometheus_notifications_sent_total",
                     "prometheus_notifications_alertmanagers_discovered",
                     "prometheus_config_last_reload_successful", "prometheus_rule_group_iterations_missed_total",
                     # Alertmanager's own, scraped by the alertmanager job
                     "alertmanager_notifications_total", "alertmanager_notifications_failed_total"}
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                "group_right", "offset", "bool", "inf", "nan", "atan2"}


def known_metric_names(recorded):
    names = set(CATALOGUE["counter"]) | set(CATALOGUE["gauge"]) | PROMETHEUS_SERIES | set(recorded)
    for h in CATALOGUE["histogram"]:
        names |= {h + "_bucket", h + "_sum", h + "_count"}
    return names


def metric_names_in(expr):
    """Metric names a PromQL expression selects (a lexer-level approximation)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)              # strings
    e = re.sub(r"\{[^}]*\}", "{}", e)                         # label matchers
    e = re.sub(r"\[[^\]]*\]", "[]", e)                        # ranges / subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def alert_names_in_rule_file(path):
    return re.findall(r"^\s*-\s*alert:\s*(\S+)", read(path), re.M)


def recorded_names():
    names = []
    for p in sorted(glob.glob(os.path.join(PROM_DIR, "rules", "*.yml"))):
        names += re.findall(r"^\s*-\s*record:\s*(\S+)", read(p), re.M)
    return names


def load_dashboards():
    return {os.path.basename(p): json.loads(read(p))
            for p in sorted(glob.glob(os.path.join(DASH_DIR, "*.json")))}


def panel_queries(dashboard):
    """(where, expr) for every panel target, annotation and variable query."""
    out = []
    for p in dashboard.get("panels", []):
        for t in p.get("targets", []):
            out.append((f'panel "{p["title"]}" {t["refId"]}', t["expr"]))
    for a in dashboard.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append((f'annotation "{a["name"]}"', a["expr"]))
    return out


def variable_selectors(dashboard):
    out = []
    for v in dashboard.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.+),\s*(\w+)\)\s*", q or "")
        if m:
            out.append((f'variable "{v["name"]}"', m.group(1), m.group(2)))
    return out


def substitute(expr, service, tenant):
    values = {"service": service, "tenant": tenant, "__rate_interval": "1m",
              "__interval": "15s", "__range": "1h", "__range_s": "3600",
              "__interval_ms": "15000"}
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name}")
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def load_targets(folder):
    out = {}
    for p in sorted(glob.glob(os.path.join(PROM_DIR, folder, "*.json"))):
        groups = json.loads(read(p))
        out[os.path.basename(p)] = [
            (sorted((t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in g["targets"]),
             g.get("labels", {})) for g in groups]
    return out


# --------------------------------------------------------------------------- static

class TargetFilesTest(unittest.TestCase):
    def test_native_and_docker_target_files_list_the_same_jobs_ports_and_labels(self):
        native, docker = load_targets("targets"), load_targets("targets-docker")
        self.assertEqual(sorted(native), sorted(docker), "the two sets hold different files")
        for name in native:
            n = [([port for _, port in ts], labels) for ts, labels in native[name]]
            d = [([port for _, port in ts], labels) for ts, labels in docker[name]]
            self.assertEqual(n, d, f"{name}: ports or labels differ")

    def test_native_targets_are_local_and_docker_targets_use_compose_names(self):
        for name, groups in load_targets("targets").items():
            for ts, _ in groups:
                self.assertTrue(all(h == "localhost" for h, _ in ts), f"targets/{name}: {ts}")
        for name, groups in load_targets("targets-docker").items():
            job = name[:-len(".json")]
            expected = "localhost" if job == "prometheus" else job
            for ts, _ in groups:
                self.assertTrue(all(h == expected for h, _ in ts), f"targets-docker/{name}: {ts}")

    def test_every_app_job_is_scraped_through_its_file_with_service_label_and_honor_labels(self):
        conf = read(os.path.join(PROM_DIR, "prometheus.yml"))
        jobs = re.split(r"\n  - job_name: ", conf)[1:]
        by_name = {j.split("\n", 1)[0].strip(): j for j in jobs}
        self.assertEqual(set(by_name), set(APP_JOBS) | {"prometheus", "alertmanager"})
        self.assertIn("files: [targets/alertmanager.json]", by_name["alertmanager"])
        self.assertRegex(by_name["alertmanager"], r"source_labels: \[job\]\s+target_label: service")
        for job in APP_JOBS:
            body = by_name[job]
            self.assertIn(f"files: [targets/{job}.json]", body)
            self.assertIn("honor_labels: true", body)
            self.assertRegex(body, r"source_labels: \[job\]\s+target_label: service")
            ports = [p for ts, _ in load_targets("targets")[f"{job}.json"] for _, p in ts]
            self.assertEqual(ports, [APP_JOBS[job]])
        self.assertIn("files: [targets/alertmanager.json]", conf)


class DashboardFilesTest(unittest.TestCase):
    def setUp(self):
        self.dashboards = load_dashboards()

    def test_the_three_dashboards_exist_with_unique_uids(self):
        self.assertEqual(sorted(self.dashboards),
                         ["cloudbill-overview.json", "cloudbill-slo.json", "cloudbill-tenant.json"])
        uids = [d["uid"] for d in self.dashboards.values()]
        self.assertEqual(len(uids), len(set(uids)))

    def test_overview_has_the_documents_13_panels_in_order(self):
        d = self.dashboards["cloudbill-overview.json"]
        self.assertEqual(d["title"], "CloudBill - Microservices Overview")
        self.assertEqual([p["title"] for p in d["panels"]], OVERVIEW_TITLES)
        self.assertEqual(d["refresh"], "10s")
        names = [v["name"] for v in d["templating"]["list"]]
        self.assertEqual(names, ["datasource", "service", "tenant"])

    def test_every_panel_and_query_uses_the_datasource_variable_defaulting_to_the_provisioned_uid(self):
        self.assertRegex(read(DATASOURCE), rf"(?m)^\s+uid: {DATASOURCE_UID}\s*$")
        for name, d in self.dashboards.items():
            variables = {v["name"]: v for v in d["templating"]["list"]}
            ds = variables.get("datasource")
            self.assertIsNotNone(ds, f"{name} has no datasource variable")
            self.assertEqual((ds["type"], ds["query"], ds["current"]["value"]), ("datasource", "prometheus", DATASOURCE_UID), name)
            for p in d["panels"]:
                self.assertEqual(p["datasource"]["uid"], "${datasource}", f"{name}: {p['title']}")
                self.assertTrue(p["targets"], f"{name}: {p['title']} has no query")
                for t in p["targets"]:
                    self.assertEqual(t["datasource"]["uid"], "${datasource}", f"{name}: {p['title']}")
            for v in d["templating"]["list"]:
                if v["type"] != "datasource":
                    self.assertEqual(v["datasource"]["uid"], "${datasource}", f"{name}: ${v['name']}")

    def test_every_panel_has_a_description(self):
        for name, d in self.dashboards.items():
            for p in d["panels"]:
                self.assertTrue(p.get("description", "").strip(), f"{name}: {p['title']} has no description")

    def test_threshold_lines_sit_at_the_alert_thresholds(self):
        alerts = read(os.path.join(PROM_DIR, "alerts", "cloudbill-alerts.yml"))
        overview = {p["title"]: p for p in self.dashboards["cloudbill-overview.json"]["panels"]}
        expected = {
            "HTTP Request Latency": [("service:http_request_duration_seconds:p95_rate5m > ", 2.5),
                                     ("service:http_request_duration_seconds:p99_rate5m > ", 5)],
            "Memory Usage by Service": [("process_resident_memory_bytes > ", 1073741824), ("process_resident_memory_bytes > ", 2147483648)],
            "CPU Usage by Service": [("instance:process_cpu_seconds:rate5m > ", 0.8)],
        }
        for title, pairs in expected.items():
            d = overview[title]["fieldConfig"]["defaults"]
            self.assertEqual(d["custom"]["thresholdsStyle"]["mode"], "line", title)
            steps = [s["value"] for s in d["thresholds"]["steps"] if s["value"] is not None]
            for rule, value in pairs:
                literal = str(int(value)) if float(value).is_integer() else str(value)
                self.assertTrue(f"{rule}{literal}" in alerts, f"{title}: the alert threshold moved from {rule}{literal}")
                self.assertIn(value, steps, f"{title}: no line at {value:g}")
        pool = [t["expr"] for t in overview["Database Connection Pool"]["targets"]]
        self.assertIn('0.8 * sum by (service) (db_pool_total_connections{service=~"$service"})', pool)
        self.assertTrue("instance:db_pool_active_per_total_connections:ratio_avg1m > 0.8" in alerts, "DatabasePoolExhaustion moved from 0.8")

    def test_business_legends_name_the_service(self):
        overview = {p["title"]: p for p in self.dashboards["cloudbill-overview.json"]["panels"]}
        for title in ("Payment Processing Rate", "Invoice Generation Rate", "Notification Delivery Rate"):
            for t in overview[title]["targets"]:
                self.assertIn("{{service}}", t["legendFormat"], title)
                self.assertRegex(t["expr"], r"sum by \(service[,)]", title)

    def test_no_panel_sums_over_the_dashboard_range(self):
        for name, d in self.dashboards.items():
            for where, expr in panel_queries(d):
                self.assertNotIn("[$__range]", expr, f"{name} {where}: use a per-interval rate")

    def test_panels_do_not_overlap(self):
        for name, d in self.dashboards.items():
            cells = set()
            for p in d["panels"]:
                g = p["gridPos"]
                mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
                self.assertFalse(cells & mine, f"{name}: {p['title']} overlaps")
                self.assertLessEqual(g["x"] + g["w"], 24)
                cells |= mine

    def test_every_query_selects_known_metrics_only(self):
        known = known_metric_names(recorded_names())
        for name, d in self.dashboards.items():
            for where, expr in panel_queries(d):
                unknown = metric_names_in(expr) - known
                self.assertFalse(unknown, f"{name} {where}: unknown metrics {unknown}")
            for where, selector, _ in variable_selectors(d):
                self.assertFalse(metric_names_in(selector) - known, f"{name} {where}")


class RuleFilesTest(unittest.TestCase):
    def setUp(self):
        self.alert_file = os.path.join(PROM_DIR, "alerts", "cloudbill-alerts.yml")
        self.alerts = alert_names_in_rule_file(self.alert_file)
        self.tests = {p: read(p) for p in sorted(glob.glob(os.path.join(PROM_DIR, "tests", "*.yml")))}

    def test_at_least_30_alert_rules_including_every_alert_the_document_names(self):
        self.assertGreaterEqual(len(self.alerts), 30)
        for name in ["ServiceDown", "HighErrorRate", "CriticalErrorRate", "HighLatencyP95",
                     "CriticalLatencyP99", "SlowDatabaseQueries", "HighMemoryUsage",
                     "CriticalMemoryUsage", "HighCPUUsage", "DatabasePoolExhaustion",
                     "DatabaseConnectionErrors", "HighCacheMissRate", "RedisConnectionErrors",
                     "HighPaymentFailureRate", "InvoiceGenerationFailures",
                     "NotificationDeliveryFailures", "TrafficSpike", "TrafficDrop", "Watchdog"]:
            self.assertIn(name, self.alerts)

    def test_every_alert_is_tested_firing_and_silent(self):
        firing, silent = set(), set()
        for text in self.tests.values():
            for m in re.finditer(r"alertname: (\w+)\n\s+exp_alerts:( \[\])?", text):
                (silent if m.group(2) else firing).add(m.group(1))
        for name in set(self.alerts):
            self.assertIn(name, firing, f"{name}: no test shows it firing")
            if name != "Watchdog":
                self.assertIn(name, silent, f"{name}: no test shows it silent")

    def test_every_test_group_sets_its_interval(self):
        for path, text in self.tests.items():
            groups = re.split(r"\n  - name: ", text)[1:]
            self.assertTrue(groups, path)
            for g in groups:
                self.assertRegex(g, r"\n    interval: \d+[smh]\n", f"{path}: {g.splitlines()[0]}")

    def test_rate_windows_are_at_least_one_minute_and_durations_are_plain_literals(self):
        for p in glob.glob(os.path.join(PROM_DIR, "alerts", "*.yml")) + glob.glob(os.path.join(PROM_DIR, "rules", "*.yml")):
            text = read(p)
            # Outside annotations only a label copied verbatim (component: "{{ $labels.service }}"):
            # a label built from $value would change the alert's identity at every evaluation.
            outside = re.sub(r"annotations:.*?(?=\n      - |\n  - |\Z)", "", text, flags=re.S)
            self.assertEqual(re.findall(r"\{\{(?! \$labels\.\w+ \}\})[^}]*\}\}", outside), [], p)
            for w in re.findall(r"\[(\d+)([smhd])\]", text):
                seconds = int(w[0]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[w[1]]
                self.assertGreaterEqual(seconds, 60, f"{p}: window [{w[0]}{w[1]}] < 4 x 15s")

    def test_no_alert_aggregates_by_tenant_except_the_bounded_one(self):
        blocks = re.split(r"\n      - alert: ", read(self.alert_file))[1:]
        for b in blocks:
            name = b.split("\n", 1)[0]
            expr = b.split("expr:", 1)[1].split("\n        for:")[0].split("\n        labels:")[0]
            if re.search(r"by \([^)]*tenant_id", expr):
                self.assertEqual(name, "TenantHighErrorRate")
                self.assertIn("topk(", expr)

    def test_runbooks_have_a_section_per_alert(self):
        headings = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
                    for h in re.findall(r"^#+ (.+)$", read(RUNBOOKS), re.M)}
        for name in set(self.alerts):
            self.assertIn(name.lower(), headings, f"docs/runbooks.md has no section {name}")


# --------------------------------------------------------------------------- live

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LivePrometheusTest(unittest.TestCase):
    """Against a real Prometheus loading the real prometheus.yml."""

    @classmethod
    def setUpClass(cls):
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        if not os.access(binary, os.X_OK):
            raise unittest.SkipTest("prometheus binary not found")  # the script checks first
        cls.tmp = tempfile.mkdtemp(prefix="cloudbill-prom-")
        cls.port = free_port()
        cls.base = f"http://127.0.0.1:{cls.port}"
        cls.log = open(os.path.join(cls.tmp, "prometheus.log"), "w")
        cls.proc = subprocess.Popen(
            [binary, f"--config.file={os.path.join(PROM_DIR, 'prometheus.yml')}",
             f"--storage.tsdb.path={os.path.join(cls.tmp, 'data')}",
             f"--web.listen-address=127.0.0.1:{cls.port}", "--log.level=warn"],
            stdout=cls.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(cls.base + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if cls.proc.poll() is not None:
                break
            time.sleep(0.2)
        else:
            cls.tearDownClass()
            raise RuntimeError("Prometheus did not become ready")
        if cls.proc.poll() is not None:
            cls.log.close()
            raise RuntimeError("Prometheus exited:\n" + read(os.path.join(cls.tmp, "prometheus.log")))

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait()
        cls.log.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def api(self, path, **params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
        return body

    def wait_for(self, predicate, timeout=25):
        deadline = time.time() + timeout
        while True:
            value = predicate()
            if value or time.time() > deadline:
                return value
            time.sleep(0.5)

    def test_targets_carry_job_and_equal_service_labels(self):
        targets = self.api("/api/v1/targets")["data"]["activeTargets"]
        scraped = {t["labels"]["job"]: t for t in targets}
        self.assertEqual(set(scraped), set(APP_JOBS) | {"prometheus", "alertmanager"})
        for job, t in scraped.items():
            self.assertEqual(t["labels"].get("service"), job)
            if job in APP_JOBS:
                self.assertEqual(t["labels"]["instance"], f"localhost:{APP_JOBS[job]}")
        self.assertEqual(scraped["api-gateway"]["scrapeInterval"], "10s")
        self.assertEqual(scraped["auth-service"]["scrapeInterval"], "15s")
        # Every job yields an `up` series with job == service (targets may be down).
        def ups():
            r = self.api("/api/v1/query", query="up")["data"]["result"]
            return r if len(r) == len(scraped) else None
        result = self.wait_for(ups)
        self.assertTrue(result, "no up series for every job within 25s")
        for s in result:
            self.assertEqual(s["metric"]["job"], s["metric"]["service"])

    def test_alertmanager_is_discovered_through_file_sd(self):
        ams = self.wait_for(lambda: self.api("/api/v1/alertmanagers")["data"]["activeAlertmanagers"])
        self.assertEqual([a["url"] for a in ams], ["http://localhost:9093/api/v2/alerts"])

    def test_rules_load_and_every_alert_has_severity_and_annotations(self):
        groups = self.api("/api/v1/rules")["data"]["groups"]
        alerts = [r for g in groups for r in g["rules"] if r["type"] == "alerting"]
        expected = alert_names_in_rule_file(os.path.join(PROM_DIR, "alerts", "cloudbill-alerts.yml"))
        self.assertEqual(len(alerts), len(expected))
        for a in alerts:
            self.assertIn(a["labels"].get("severity"), SEVERITIES, a["name"])
            for key in ("summary", "description", "runbook_url"):
                self.assertTrue(a["annotations"].get(key), f"{a['name']}: no {key}")
            self.assertEqual(a["annotations"]["runbook_url"], RUNBOOK_BASE + a["name"].lower())

    def test_every_rule_selects_known_metrics_only(self):
        known = known_metric_names(recorded_names())
        for g in self.api("/api/v1/rules")["data"]["groups"]:
            for r in g["rules"]:
                unknown = metric_names_in(r["query"]) - known
                self.assertFalse(unknown, f"{r['name']}: unknown metrics {unknown}")

    def test_every_rule_evaluates_without_error_and_watchdog_fires(self):
        def all_evaluated():
            gs = self.api("/api/v1/rules")["data"]["groups"]
            done = all(g["lastEvaluation"] and not g["lastEvaluation"].startswith("0001") for g in gs)
            return gs if done else None
        # A group's first evaluation comes within one of its intervals (the SLO windows of a
        # day or more are evaluated once a minute).
        longest = max(g["interval"] for g in self.api("/api/v1/rules")["data"]["groups"])
        groups = self.wait_for(all_evaluated, timeout=longest + 25)
        self.assertTrue(groups, f"rule groups not evaluated within {longest + 25:g}s")
        for g in groups:
            for r in g["rules"]:
                self.assertEqual(r["health"], "ok", f"{g['name']}/{r['name']}: {r.get('lastError')}")
        firing = [a["labels"]["alertname"] for a in self.api("/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]
        self.assertIn("Watchdog", firing)

    def test_every_dashboard_query_parses_and_executes(self):
        count = 0
        for name, d in load_dashboards().items():
            for where, expr in panel_queries(d):
                for service, tenant in ((".*", ".*"), ("api-gateway", "t1")):
                    q = substitute(expr, service, tenant)
                    body = self.api("/api/v1/query", query=q)
                    self.assertEqual(body["status"], "success", f"{name} {where}: {body.get('error')}\n{q}")
                    count += 1
            for where, selector, _label in variable_selectors(d):
                q = substitute(selector, ".*", ".*")
                body = self.api("/api/v1/series", **{"match[]": q})
                self.assertEqual(body["status"], "success", f"{name} {where}: {body.get('error')}")
                count += 1
        type(self).queries_executed = count

    queries_executed = 0


if __name__ == "__main__":
    import sys
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(
        unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__]))
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"dashboard queries executed: {LivePrometheusTest.queries_executed}")
    print(f"python-checks: passed={result.testsRun - bad - len(result.skipped)} failed={bad} skipped={len(result.skipped)}")
    sys.exit(0 if result.wasSuccessful() and not result.skipped else 1)
