#!/usr/bin/env python3
"""Requests every local URL that the given texts print (README, docs/operations.md, the
output of `scripts/stack urls` and `scripts/stack status`, the Makefile's demo target)
and fails unless each answers 200.

    python3 scripts/lib/front_door.py [--without-grafana] [--without-ha | --only-ha] FILE...

A URL is `http://localhost:PORT/...` or `http://127.0.0.1:PORT/...`. On a line that is a
curl command, `-X POST` sends a POST and `-G ... --data-urlencode 'k=v'` adds the query,
as curl would. Skipped, and counted as skipped: URLs with a shell variable or a
placeholder in them, and with --without-grafana (Grafana is not installed here) every
URL on Grafana's port 3000; with --without-ha the URLs of the HA monitoring's second
Prometheus, second Alertmanager and VictoriaMetrics (CLOUDBILL_HA=1; make test-ha requests
them with --only-ha, which skips every other URL). Prints one line per URL and
`front-door: N answered 200, M failed, K skipped`; exits 1 when any failed.
"""
import argparse
import re
import shlex
import sys
import urllib.error
import urllib.parse
import urllib.request

URL = re.compile(r"https?://(?:[^\s/@'\"`]+@)?(?:localhost|127\.0\.0\.1):\d+[^\s'\"`)<>|]*")
GRAFANA_PORT = 3000
HA_PORTS = {9091, 9094, 8428}


def requests_in(line):
    """(method, url) for each local URL of a line."""
    method, params = "GET", []
    if re.search(r"\bcurl\b", line):
        try:
            words = shlex.split(line.split("|")[0].split("#")[0], posix=True)
        except ValueError:
            words = line.split()
        if "-X" in words and words.index("-X") + 1 < len(words):
            method = words[words.index("-X") + 1]
        if "-G" in words:
            params = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--data-urlencode"]
    out = []
    for m in URL.finditer(line):
        url = m.group(0).rstrip(".,;:")
        url = url.split("#")[0]
        if params:
            query = urllib.parse.urlencode([tuple(p.split("=", 1)) for p in params if "=" in p])
            url += ("&" if "?" in url else "?") + query
        out.append((method, url))
    return out


def answer(method, url):
    parsed = urllib.parse.urlsplit(url)
    headers = {}
    if parsed.username:
        import base64
        token = base64.b64encode(f"{parsed.username}:{parsed.password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
        url = urllib.parse.urlunsplit(parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else "")))
    request = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:
        return f"no answer ({error})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--without-grafana", action="store_true")
    ha = parser.add_mutually_exclusive_group()
    ha.add_argument("--without-ha", action="store_true")
    ha.add_argument("--only-ha", action="store_true")
    args = parser.parse_args()
    seen, ok, failed, skipped = set(), 0, 0, 0
    for path in args.files:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                for method, url in requests_in(line):
                    if (method, url) in seen:
                        continue
                    seen.add((method, url))
                    where = f"{path}:{number}"
                    port = urllib.parse.urlsplit(url).port
                    if "$" in url or "<" in url or "{" in url:
                        skipped += 1
                        print(f"skip {method} {url} ({where}: a placeholder)")
                        continue
                    if args.without_ha and port in HA_PORTS:
                        skipped += 1
                        print(f"skip {method} {url} ({where}: HA monitoring only, make test-ha requests it)")
                        continue
                    if args.only_ha and port not in HA_PORTS:
                        continue
                    if args.without_grafana and port == GRAFANA_PORT:
                        skipped += 1
                        print(f"skip {method} {url} ({where}: Grafana is not installed here)")
                        continue
                    status = answer(method, url)
                    if status == 200:
                        ok += 1
                        print(f"ok   {method} {url} ({where})")
                    else:
                        failed += 1
                        print(f"FAIL {method} {url} -> {status} ({where})")
    print(f"front-door: {ok} answered 200, {failed} failed, {skipped} skipped")
    return 1 if failed or not ok else 0


if __name__ == "__main__":
    sys.exit(main())
