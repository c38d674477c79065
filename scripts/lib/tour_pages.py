"""The alert tour's HTML: every provisioned dashboard over the whole tour, and one page per
scenario with the overview dashboard over the incident (fault shaded) next to its alert
timeline, plus an index, tour.html. Also the checks made of those pages: every panel has
data or a reason a failure-only panel may have none, every variable resolved, no external
URL, and the overview's 13 titles in order in headless Chromium with JavaScript off.
"""
import glob
import html
import os
import re
import shutil
import subprocess
import tempfile

import snapshot

OVERVIEW_UID = "cloudbill-overview"
# A panel may be empty over a range only when it counts failures or alerts: "no series
# matched" means a query that does not fit the fleet.
ACCEPTED_EMPTY = ("no failures in the range", "no alert was firing in the range")


def esc(text):
    return html.escape(str(text), quote=True)


def page_problems(shot, text, name):
    problems = []
    for data in shot.panels:
        title = data.panel.get("title")
        if not data.series and data.why_empty() not in ACCEPTED_EMPTY:
            problems.append(f"snapshot {name}: panel {title!r} has no data ({data.why_empty()})")
        for _, expr, _ in data.queries:
            if "$" in expr:
                problems.append(f"snapshot {name}: panel {title!r} kept a variable: {expr}")
    # Links between the report's own files are relative; anything with a scheme or a host
    # would be fetched from elsewhere.
    external = re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"'<>]*|(?:src|href)\s*=\s*[\"'](?:[A-Za-z][A-Za-z0-9+.-]*:|//)", text)
    if external:
        problems.append(f"snapshot {name}: refers to something outside the file: {external[:3]}")
    return problems


def render_dashboards(prometheus, start, end, rewrite, folder, scrape):
    """Every provisioned dashboard over [start, end] into folder/<uid>.html."""
    os.makedirs(folder, exist_ok=True)
    problems, written = [], []
    for path in sorted(glob.glob(os.path.join(snapshot.DASHBOARD_DIR, "*.json"))):
        dashboard = snapshot.load_dashboard(path)
        shot = snapshot.Snapshot(dashboard, prometheus, start, end, scrape_interval=scrape, rewrite=rewrite)
        text = shot.html()
        target = os.path.join(folder, f"{dashboard['uid']}.html")
        with open(target, "w") as f:
            f.write(text)
        problems += page_problems(shot, text, dashboard["uid"])
        written.append(target)
    return written, problems


def timeline(result, start, end):
    """The scenario's alerts as bars: pending (light), firing (solid), from the fault."""
    fault = result.get("fault_started_at")
    rows = []
    entries = [(a["alert"], a.get("service"), a.get("severity"), a.get("pending_s"), a.get("firing_s"),
                a.get("resolved_s"), a.get("delivered"), a.get("inhibited")) for a in result.get("alerts", [])]
    for e in result.get("explained_critical", []) + result.get("unexpected_critical", []):
        entries.append((e["alert"], e.get("service"), "critical", None, e.get("firing_s"), None, None, None))
    width = 600

    def x(t):
        return max(0.0, min(width, (t - start) / (end - start) * width))

    cleared = result.get("fault_cleared_at") or end
    for alert, service, severity, pending, firing, resolved, delivered, inhibited in entries:
        bars = []
        if fault is not None and pending is not None:
            a = fault + pending
            b = fault + firing if firing is not None else cleared
            bars.append(f'<rect x="{x(a):.1f}" y="4" width="{max(1.0, x(b) - x(a)):.1f}" height="12" class="pending"/>')
        if fault is not None and firing is not None:
            a = fault + firing
            b = cleared + resolved if resolved is not None else end
            bars.append(f'<rect x="{x(a):.1f}" y="4" width="{max(1.0, x(b) - x(a)):.1f}" height="12" class="firing {esc(severity)}"/>')
        outcome = "delivered" if delivered else "inhibited" if inhibited else "–" if delivered is None else "not delivered"
        rows.append(f"<tr><td>{esc(alert)}</td><td>{esc(service or '')}</td><td>{esc(severity or '')}</td>"
                    f"<td>{'–' if firing is None else f'{firing:.1f} s'}</td><td>{esc(outcome)}</td>"
                    f'<td><svg viewBox="0 0 {width} 20" width="100%" role="img" aria-label="{esc(alert)} timeline">'
                    f'<rect x="{x(fault or start):.1f}" y="0" width="{max(1.0, x(cleared) - x(fault or start)):.1f}" height="20" class="fault"/>'
                    f'{"".join(bars)}</svg></td></tr>')
    paged = "; ".join(", ".join(p) for p in result.get("paged", [])) or "none"
    return (f'<table class="timeline"><thead><tr><th>Alert</th><th>Service</th><th>Severity</th><th>Firing after</th>'
            f'<th>Alertmanager</th><th>Timeline (fault shaded)</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<p>Pages for this incident: {esc(result.get("pages", "–"))} ({esc(paged)}).'
            f' Problems: {esc("; ".join(result.get("problems", [])) or "none")}.</p>')


TIMELINE_STYLE = """
.incident{padding:8px 16px}.incident table{border-collapse:collapse;width:100%;font-size:12px}
.incident th,.incident td{border-bottom:1px solid #2c2e33;padding:3px 6px;text-align:left;white-space:nowrap}
.incident td:last-child{width:50%}
.fault{fill:rgba(242,73,92,.16)}.pending{fill:#ff9830;opacity:.45}.firing{fill:#f2495c}.firing.warning{fill:#ff9830}
.firing.info{fill:#5794f2}
nav{padding:8px 16px}nav a{color:#6e9fff}
"""


def render_scenarios(results, prometheus, rewrite, folder, scrape):
    """scenarios/<name>.html per scenario and tour.html, the index; returns the problems."""
    os.makedirs(os.path.join(folder, "scenarios"), exist_ok=True)
    overview = snapshot.load_dashboard(os.path.join(snapshot.DASHBOARD_DIR, f"{OVERVIEW_UID}.json"))
    problems, index = [], []
    for result in results:
        window = result.get("window")
        if not window:
            continue
        start, end = window
        shades = [(result["fault_started_at"], result["fault_cleared_at"])] if result.get("fault_started_at") else []
        shot = snapshot.Snapshot(overview, prometheus, start, end, shades=shades, scrape_interval=scrape, rewrite=rewrite)
        name = result["scenario"]
        incident = (f'<style>{TIMELINE_STYLE}</style><nav><a href="../tour.html">All scenarios</a></nav>'
                    f'<section class="incident"><h2>Scenario {esc(name)}: alerts</h2>{timeline(result, start, end)}</section>')
        text = shot.html(heading_extra=incident)
        with open(os.path.join(folder, "scenarios", f"{name}.html"), "w") as f:
            f.write(text)
        problems += page_problems(shot, text, f"scenario {name}")
        state = "passed" if not result.get("problems") else "FAILED"
        alerts = ", ".join(sorted({a["alert"] for a in result.get("alerts", [])}))
        index.append(f'<tr><td><a href="scenarios/{esc(name)}.html">{esc(name)}</a></td><td>{esc(alerts)}</td>'
                     f'<td>{esc(result.get("pages", "–"))}</td><td>{state}</td><td>{esc(snapshot.utc(start))}</td>'
                     f'<td>{end - start:.0f} s</td></tr>')
    with open(os.path.join(folder, "tour.html"), "w") as f:
        f.write("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">" + snapshot.CSP + "<title>CloudBill alert tour</title>"
                f"<style>{snapshot.STYLE}{TIMELINE_STYLE}</style></head><body><header><h1>CloudBill alert tour</h1>"
                "<p>One page per scenario: the overview dashboard over the incident, the fault shaded, next to its alerts. "
                "The whole tour: <a href=\"snapshots/cloudbill-overview.html\">overview</a>, "
                "<a href=\"snapshots/cloudbill-slo.html\">SLOs</a>, <a href=\"snapshots/cloudbill-tenant.html\">tenant</a>.</p></header>"
                "<section class=\"incident\"><table><thead><tr><th>Scenario</th><th>Expected alerts</th><th>Pages</th>"
                f"<th>Result</th><th>Start</th><th>Window</th></tr></thead><tbody>{''.join(index)}</tbody></table></section>"
                "</body></html>\n")
    return problems


def chromium():
    return next((c for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)


def chromium_run(arguments, timeout=90):
    """Headless Chromium. JavaScript is off through the pages' own Content-Security-Policy
    (script-src 'none'): Chromium's scriptEnabled=false would also stop --dump-dom, which
    reads the page through the DevTools protocol."""
    binary = chromium()
    if not binary:
        raise RuntimeError("headless Chromium is not installed (scripts/install-deps installs chromium)")
    with tempfile.TemporaryDirectory() as profile:
        command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   f"--user-data-dir={profile}", *arguments]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def chromium_titles(path):
    """The panel titles of a snapshot as headless Chromium, JavaScript off, lays them out."""
    done = chromium_run(["--dump-dom", "file://" + os.path.abspath(path)])
    if done.returncode != 0 or "<main" not in done.stdout:
        raise RuntimeError(f"chromium could not load {path}: {done.stderr.strip()[-300:]}")
    if "script-src 'none'" not in done.stdout:
        raise RuntimeError(f"{path} does not forbid scripts (Content-Security-Policy)")
    return [html.unescape(t) for t in re.findall(r'<section class="panel"[^>]*>\s*<h2[^>]*>(.*?)</h2>', done.stdout)]


def screenshot(path, png, width=1600, height=2200):
    done = chromium_run([f"--screenshot={os.path.abspath(png)}", f"--window-size={width},{height}",
                         "--hide-scrollbars", "file://" + os.path.abspath(path)])
    if done.returncode != 0 or not os.path.exists(png):
        raise RuntimeError(f"chromium took no screenshot of {path}: {done.stderr.strip()[-300:]}")
