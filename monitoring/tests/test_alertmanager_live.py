"""One page per incident, proven on a real Alertmanager (python3 stdlib only).

Run by scripts/check-monitoring. For every outage the alert tour induces, this test
starts a fresh Alertmanager (/usr/bin/prometheus-alertmanager) on a free loopback port
with the production monitoring/alertmanager/alertmanager.yml (its timers divided by 10
with the tour's renderer, its webhook receiver moved to a receiver this test runs),
posts the set of alerts the rules raise during that outage, and checks:

  - which alerts Alertmanager inhibits (GET /api/v2/alerts, status.inhibitedBy);
  - how many pages it sends: distinct notification groups (groupKey) delivered to the
    paging receiver, which must be exactly one per incident;
  - that FaultInjectionActive is never hidden by the alert it explains.

The alerts' labels are not written here by hand: each alert gets the static labels of
its rule in monitoring/prometheus/alerts/cloudbill-alerts.yml (templates such as
component: "{{ $labels.service }}" resolved), plus `depends_on` from
monitoring/prometheus/rules/cloudbill-topology.yml when the rule joins the topology.
"""
import http.client
import http.server
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ALERTS = os.path.join(ROOT, "monitoring", "prometheus", "alerts", "cloudbill-alerts.yml")
TOPOLOGY = os.path.join(ROOT, "monitoring", "prometheus", "rules", "cloudbill-topology.yml")
AM_CONFIG = os.path.join(ROOT, "monitoring", "alertmanager", "alertmanager.yml")
TARGETS = os.path.join(ROOT, "monitoring", "prometheus", "targets")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
SCALE = 60  # group_wait 10s -> 0.17s, group_interval 5m -> 5s


def load_timescale():
    spec = importlib.util.spec_from_file_location("timescale", os.path.join(ROOT, "scripts", "timescale.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rule_labels():
    """alertname -> list of (static labels, joins the topology) of its rules, in file order."""
    rules = {}
    lines = open(ALERTS).read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"(\s*)- alert: (\w+)\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, name = len(m.group(1)), m.group(2)
        labels, joins, j = {}, False, i + 1
        while j < len(lines) and not re.match(r"\s*- (alert|record): ", lines[j]) and not re.match(r"\s*- name: ", lines[j]):
            if "service:cloudbill_depends_on:info" in lines[j]:
                joins = True
            if re.match(r"\s+labels:\s*$", lines[j]):
                depth = len(lines[j]) - len(lines[j].lstrip())
                k = j + 1
                while k < len(lines) and lines[k].strip() and len(lines[k]) - len(lines[k].lstrip()) > depth:
                    key, _, value = lines[k].strip().partition(":")
                    labels[key] = value.strip().strip('"')
                    k += 1
                j = k
                continue
            j += 1
        rules.setdefault(name, []).append((labels, joins))
        i = j
    return rules


def topology():
    text = open(TOPOLOGY).read()
    return dict(re.findall(r'"service", "([\w-]+)", "", ""\), "depends_on", "([^"]+)"', text))


RULES = rule_labels()
DEPENDS_ON = topology()
# Prometheus adds its external labels to every alert it sends.
EXTERNAL_LABELS = dict(re.findall(r"(?m)^    (\w+): (\S+)$", open(os.path.join(ROOT, "monitoring", "prometheus", "prometheus.yml")).read()
                                  .split("external_labels:", 1)[1].split("\n\n", 1)[0]))


def alert(name, service, severity=None, **extra):
    """The labels the rule `name` gives an alert of `service` (the rule of that severity
    when the alert has several, such as the burn-rate pages and tickets)."""
    candidates = RULES[name]
    static, joins = next(((l, j) for l, j in candidates if severity is None or l.get("severity") == severity), candidates[0])
    labels = {**EXTERNAL_LABELS, "alertname": name, "service": service, **extra}
    for key, value in static.items():
        labels[key] = value.replace("{{ $labels.service }}", service)
    if joins:
        labels["depends_on"] = DEPENDS_ON.get(service, ",")
    return labels


BACKENDS = ["auth-service", "billing-service", "payment-service", "notification-service"]

# Each outage of the alert tour: the alerts its failure raises (docs/alert-tour.md), the
# alerts that must reach a human un-inhibited, and the pages it may send (1).
OUTAGES = {
    "database-down": (
        [alert("DatabaseConnectionErrors", s, error_type="connection") for s in BACKENDS]
        + [alert("CriticalErrorRate", s) for s in ["api-gateway", "billing-service", "payment-service"]]
        + [alert("AvailabilityBudgetBurn", s, "critical", burn_rate="14.4x") for s in ["api-gateway", "billing-service"]]
        + [alert("HighErrorRate", s) for s in ["api-gateway", "auth-service"]]
        + [alert("CriticalLatencyP99", "api-gateway")],
        {("DatabaseConnectionErrors", s) for s in BACKENDS},
    ),
    "redis-down": (
        [alert("RedisConnectionErrors", s, error_type="connection") for s in ["api-gateway", *BACKENDS]]
        + [alert("CriticalErrorRate", "api-gateway"), alert("AvailabilityBudgetBurn", "api-gateway", "critical", burn_rate="14.4x"),
           alert("HighCacheMissRate", "billing-service")],
        {("RedisConnectionErrors", s) for s in ["api-gateway", *BACKENDS]} | {("HighCacheMissRate", "billing-service")},
    ),
    "service-down": (
        [alert("ServiceDown", "notification-service", job="notification-service", instance="localhost:3004"),
         alert("CriticalErrorRate", "api-gateway"), alert("HighErrorRate", "api-gateway"),
         alert("AvailabilityBudgetBurn", "api-gateway", "critical", burn_rate="14.4x"),
         alert("FaultInjectionActive", "notification-service", fault="notification_failures")],
        {("ServiceDown", "notification-service"), ("FaultInjectionActive", "notification-service")},
    ),
    "error-burst": (
        [alert("AvailabilityBudgetBurn", "api-gateway", "critical", burn_rate="14.4x"), alert("HighErrorRate", "api-gateway"),
         alert("TenantHighErrorRate", "api-gateway", tenant_id="tenant-1"),
         alert("FaultInjectionActive", "api-gateway", fault="error_rate")],
        {("AvailabilityBudgetBurn", "api-gateway"), ("FaultInjectionActive", "api-gateway")},
    ),
    "critical-error-rate": (
        [alert("CriticalErrorRate", "api-gateway"), alert("HighErrorRate", "api-gateway"),
         alert("AvailabilityBudgetBurn", "api-gateway", "critical", burn_rate="14.4x"),
         alert("AvailabilityBudgetBurn", "api-gateway", "warning", burn_rate="3x"),
         alert("FaultInjectionActive", "api-gateway", fault="error_rate")],
        {("AvailabilityBudgetBurn", "api-gateway"), ("FaultInjectionActive", "api-gateway")},
    ),
    "slow-database": (
        [alert("SlowDatabaseQueries", "billing-service"), alert("LatencyBudgetBurn", "billing-service", "critical", burn_rate="14.4x"),
         alert("AvailabilityBudgetBurn", "billing-service", "critical", burn_rate="14.4x"),
         alert("CriticalErrorRate", "billing-service"), alert("HighErrorRate", "billing-service"),
         alert("CriticalLatencyP99", "billing-service"), alert("HighLatencyP95", "billing-service"),
         alert("CriticalLatencyP99", "payment-service"), alert("CriticalLatencyP99", "api-gateway"),
         alert("LatencyBudgetBurn", "api-gateway", "critical", burn_rate="14.4x"),
         alert("FaultInjectionActive", "billing-service", fault="db_slow")],
        {("SlowDatabaseQueries", "billing-service"), ("LatencyBudgetBurn", "billing-service"),
         ("AvailabilityBudgetBurn", "billing-service"), ("FaultInjectionActive", "billing-service")},
    ),
    "pool-exhaustion": (
        [alert("DatabasePoolExhaustion", "billing-service"), alert("DatabasePoolWaitingRequests", "billing-service"),
         alert("LatencyBudgetBurn", "billing-service", "critical", burn_rate="14.4x"),
         alert("CriticalLatencyP99", "payment-service"), alert("CriticalErrorRate", "payment-service"),
         alert("CriticalLatencyP99", "api-gateway"),
         alert("FaultInjectionActive", "billing-service", fault="db_pool_limit")],
        {("DatabasePoolExhaustion", "billing-service"), ("DatabasePoolWaitingRequests", "billing-service"),
         ("LatencyBudgetBurn", "billing-service"), ("FaultInjectionActive", "billing-service")},
    ),
    "traffic-drop": (
        [alert("TrafficDrop", s) for s in ["api-gateway", *BACKENDS]],
        {("TrafficDrop", "api-gateway")},
    ),
    # A downstream symptom pages first: payment's p99 passes 5 s within a minute, billing's
    # latency budget burn needs its hour window to fill. The burn arrives after the page
    # went out (LATER below): it must update that page, not open a second one, and from
    # then on payment's p99 is inhibited (it depends on billing).
    "latency-p95": (
        [alert("CriticalLatencyP99", "payment-service"), alert("HighLatencyP95", "billing-service"),
         alert("FaultInjectionActive", "billing-service", fault="http_delay")],
        {("LatencyBudgetBurn", "billing-service"), ("FaultInjectionActive", "billing-service")},
    ),
    "memory-critical": (
        [alert("CriticalMemoryUsage", "billing-service", job="billing-service", instance="localhost:3002"),
         alert("HighMemoryUsage", "billing-service", job="billing-service", instance="localhost:3002"),
         alert("FaultInjectionActive", "billing-service", fault="memory_ballast")],
        {("CriticalMemoryUsage", "billing-service"), ("FaultInjectionActive", "billing-service")},
    ),
}


# Alerts that fire after the first page went out (posted past group_wait).
LATER = {
    "latency-p95": [alert("LatencyBudgetBurn", "billing-service", "critical", burn_rate="14.4x"),
                    alert("CriticalLatencyP99", "api-gateway")],
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """The webhook receiver alertmanager.yml notifies, on a free port."""

    def __init__(self):
        self.lock = threading.Lock()
        self.posts = []  # (path, payload)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def pages(self):
        with self.lock:
            return [p for path, p in self.posts if path == "/alerts/page" and p.get("status") == "firing"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Alertmanager:
    def __init__(self, receiver_port):
        self.dir = tempfile.mkdtemp(prefix="cloudbill-am-")
        text = load_timescale().scale_alertmanager_text(open(AM_CONFIG).read(), SCALE)
        config = os.path.join(self.dir, "alertmanager.yml")
        with open(config, "w") as f:
            f.write(text.replace("http://127.0.0.1:5001/", f"http://127.0.0.1:{receiver_port}/"))
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.process = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={config}", f"--storage.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/-/ready", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("Alertmanager did not become ready")

    def post(self, alerts):
        # Firing for the next hour: as if Prometheus kept re-sending them.
        ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        body = json.dumps([{"labels": labels, "annotations": {"summary": labels["alertname"]}, "endsAt": ends}
                           for labels in alerts]).encode()
        request = urllib.request.Request(self.url + "/api/v2/alerts", data=body, headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=5).read()

    def alerts(self):
        return json.load(urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5))

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(ALERTMANAGER, "prometheus-alertmanager is not installed")
class OnePagePerIncidentTest(unittest.TestCase):
    def run_outage(self, name):
        raised, notified = OUTAGES[name]
        receiver = Receiver()
        manager = Alertmanager(receiver.port)
        try:
            manager.post(raised)
            if name in LATER:
                deadline = time.time() + 10
                while not receiver.pages() and time.time() < deadline:
                    time.sleep(0.1)
                self.assertTrue(receiver.pages(), f"{name}: the first alerts did not page")
                raised = raised + LATER[name]
                manager.post(LATER[name])
            # Inhibition follows the sources as Alertmanager ingests them: wait until the
            # un-inhibited set is stable, then past group_wait (10s / SCALE) for the pages.
            deadline, previous, stable_since = time.time() + 10, None, time.time()
            while time.time() < deadline:
                current = {(a["labels"]["alertname"], a["labels"]["service"]): a for a in manager.alerts()}
                active = {k for k, a in current.items() if not a["status"]["inhibitedBy"]}
                if len(current) == len({(a["alertname"], a["service"]) for a in raised}) and active == previous:
                    if time.time() - stable_since > 0.5:
                        break
                else:
                    stable_since = time.time()
                previous = active
                time.sleep(0.1)
            self.assertEqual(previous, notified, f"{name}: alerts reaching a human")
            # Past group_wait (10s / SCALE) for a first page, and past group_interval
            # (5m / SCALE) for the update that alerts posted later bring.
            time.sleep((300 if name in LATER else 10) / SCALE + 1.5)
            pages = receiver.pages()
            keys = {p["groupKey"] for p in pages}
            paged = sorted({(a["labels"]["alertname"], a["labels"]["service"]) for p in pages for a in p["alerts"]})
            self.assertEqual(len(keys), 1, f"{name}: pages {sorted(keys)} with {paged}")
            # What the page says now (its latest notification): the causes, no symptom.
            current = {(a["labels"]["alertname"], a["labels"]["service"]) for a in pages[-1]["alerts"] if a["status"] == "firing"}
            critical = {(a["alertname"], a["service"]) for a in raised if a.get("severity") == "critical"}
            self.assertEqual(current, critical & notified, f"{name}: what the page lists")
        finally:
            manager.stop()
            receiver.close()

    def test_database_down(self):
        self.run_outage("database-down")

    def test_redis_down(self):
        self.run_outage("redis-down")

    def test_service_down(self):
        self.run_outage("service-down")

    def test_error_burst(self):
        self.run_outage("error-burst")

    def test_critical_error_rate(self):
        self.run_outage("critical-error-rate")

    def test_slow_database(self):
        self.run_outage("slow-database")

    def test_pool_exhaustion(self):
        self.run_outage("pool-exhaustion")

    def test_traffic_drop(self):
        self.run_outage("traffic-drop")

    def test_a_downstream_page_first_then_its_upstream_cause_is_still_one_page(self):
        self.run_outage("latency-p95")

    def test_memory_critical(self):
        self.run_outage("memory-critical")


@unittest.skipUnless(ALERTMANAGER, "prometheus-alertmanager is not installed")
class RecoveryTest(unittest.TestCase):
    def test_a_recovered_component_holds_its_dependents_burns_only(self):
        # notification-service was stopped and is back: ServiceDown has resolved, the
        # gateway's 6x availability burn still holds the outage in its 30-minute window.
        # ComponentRecentlyFailed holds that page back (and with it the burn's ticket, which
        # the held page still inhibits); a new symptom of the gateway, its latency threshold
        # page, gets through, and the marker itself is never sent anywhere.
        marker = {**EXTERNAL_LABELS, "alertname": "ComponentRecentlyFailed", "component": "notification-service",
                  **RULES["ComponentRecentlyFailed"][0][0]}
        echo = alert("AvailabilityBudgetBurn", "api-gateway", "critical")
        ticket = alert("AvailabilityBudgetBurn", "api-gateway", "warning")
        new_symptom = alert("CriticalLatencyP99", "api-gateway")
        receiver = Receiver()
        manager = Alertmanager(receiver.port)
        try:
            manager.post([marker, echo, ticket, new_symptom])
            deadline, held = time.time() + 10, set()
            while time.time() < deadline:
                current = manager.alerts()
                held = {(a["labels"]["alertname"], a["labels"]["severity"]) for a in current if a["status"]["inhibitedBy"]}
                if len(current) == 4 and len(held) == 2:
                    break
                time.sleep(0.1)
            self.assertEqual(held, {("AvailabilityBudgetBurn", "critical"), ("AvailabilityBudgetBurn", "warning")})
            time.sleep(10 / SCALE + 1.5)
            pages = receiver.pages()
            self.assertEqual(len({p["groupKey"] for p in pages}), 1, pages)
            self.assertEqual({a["labels"]["alertname"] for a in pages[-1]["alerts"]}, {"CriticalLatencyP99"})
            with receiver.lock:
                sent = [(path, a["labels"]["alertname"]) for path, p in receiver.posts for a in p["alerts"]]
            self.assertEqual({name for _, name in sent}, {"CriticalLatencyP99"})
        finally:
            manager.stop()
            receiver.close()


class AlertSinkTest(unittest.TestCase):
    """scripts/alert-sink, the receiver and dead man's switch of the native and compose stacks."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cloudbill-sink-")
        self.log = os.path.join(self.dir, "alerts.ndjson")
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "scripts", "alert-sink"), "--listen", f"127.0.0.1:{self.port}",
             "--log", self.log, "--watchdog-timeout", "1.5"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        self.fail("the alert sink did not start")

    def tearDown(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, method, path, body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def test_watchdog_arrivals_keep_status_ok_and_their_absence_is_503(self):
        watchdog = json.dumps({"status": "firing", "groupKey": "{}/{alertname=\"Watchdog\"}:{}", "alerts": []}).encode()
        self.assertEqual(self.request("POST", "/watchdog", watchdog)[0], 200)
        status, body = self.request("GET", "/status")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["notifications"]["watchdog"], 1)
        time.sleep(2)
        status, body = self.request("GET", "/status")
        self.assertEqual(status, 503, body)
        self.assertEqual(json.loads(body)["status"], "watchdog_missing")
        self.assertEqual(self.request("POST", "/watchdog", watchdog)[0], 200)
        self.assertEqual(self.request("GET", "/status")[0], 200)
        metrics = self.request("GET", "/metrics")[1]
        self.assertIn('cloudbill_alert_sink_notifications_total{receiver="watchdog"} 2', metrics)

    def test_notifications_are_logged_and_bad_ones_refused(self):
        page = json.dumps({"status": "firing", "groupKey": "g", "alerts": [{"labels": {"alertname": "ServiceDown"}}]}).encode()
        self.assertEqual(self.request("POST", "/alerts/page", page)[0], 200)
        self.assertEqual(self.request("POST", "/alerts/page", b"{not json")[0], 400)
        self.assertEqual(self.request("POST", "/alerts/page", b"[1, 2]")[0], 400)
        self.assertEqual(self.request("POST", "/alerts/elsewhere", page)[0], 404)
        for _ in range(10):  # the refused body is read first, so the sender gets the 413, not a reset
            self.assertEqual(self.request("POST", "/alerts/page", b"x" * ((1 << 20) + 1))[0], 413)
            self.assertEqual(self.request("POST", "/alerts/elsewhere", b"x" * 100_000)[0], 404)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        connection.putrequest("POST", "/alerts/page")
        connection.putheader("Content-Length", "-1")
        connection.endheaders()
        self.assertEqual(connection.getresponse().status, 400)
        connection.close()
        with open(self.log) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual([(l["path"], l["payload"]["groupKey"]) for l in lines], [("/alerts/page", "g")])


class TopologyTest(unittest.TestCase):
    def test_every_scraped_service_is_in_the_topology(self):
        services = {os.path.basename(p)[:-5] for p in os.listdir(TARGETS) if p.endswith(".json")} - {"prometheus", "alertmanager"}
        self.assertEqual(set(DEPENDS_ON), services)

    def test_dependencies_are_known_components(self):
        components = set(DEPENDS_ON) | {"postgres", "redis"}
        for service, depends in DEPENDS_ON.items():
            self.assertTrue(depends.startswith(",") and depends.endswith(","), service)
            self.assertLessEqual(set(filter(None, depends.split(","))), components, service)
            self.assertNotIn(service, depends.split(","), f"{service} depends on itself")

    def test_every_critical_alert_names_its_component(self):
        for name, variants in RULES.items():
            for labels, _ in variants:
                if labels.get("severity") == "critical":
                    self.assertIn("component", labels, name)

    def test_each_depended_on_component_has_an_inhibition_rule(self):
        config = open(AM_CONFIG).read()
        needed = {c for d in DEPENDS_ON.values() for c in filter(None, d.split(","))}
        for component in needed:
            rule = f"target_matchers: ['depends_on=~\".*,{component},.*\"']"
            self.assertTrue(rule in config, f"alertmanager.yml has no inhibition rule for {component}")


if __name__ == "__main__":
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(
        unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__]))
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"alertmanager-checks: passed={result.testsRun - bad - len(result.skipped)} failed={bad} skipped={len(result.skipped)}")
    sys.exit(0 if result.wasSuccessful() and not result.skipped else 1)
