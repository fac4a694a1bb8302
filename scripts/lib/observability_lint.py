#!/usr/bin/env python3
"""Lints the alert rules, their tests and the Grafana dashboard (scripts/check-observability.sh).

  observability_lint.py rules RULES.yml          every expr names only exported metrics
  observability_lint.py tests RULES.yml TESTS.yml every alert fires in a case and stays quiet in one
  observability_lint.py dashboard DASHBOARD.json  Grafana structure, exported metrics only
  observability_lint.py rendered HELM_OUT.yaml RULES.yml
                                                  the rendered PrometheusRule holds RULES.yml
  observability_lint.py as-rules DASHBOARD.json   prints its queries as a rules file, so that
                                                  promtool check rules parses them

The exported metrics are read from tests/unit/admin/fixtures/metrics.golden (its # TYPE
lines) and from the tables of docs/metrics.md; a histogram adds _bucket, _sum and _count.
Prints one line per problem and exits 1 when there is any.
"""

import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests/unit/admin/fixtures/metrics.golden")
METRICS_DOC = os.path.join(ROOT, "docs/metrics.md")

# Words of PromQL that look like metric names but are not.
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2", "start", "end",
}
# A grouping or matching clause: its parentheses hold label names.
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"(?<![\w.$])[A-Za-z_:][\w:]*")


def exported_metrics():
    """Every sample name the proxy exports, from the golden file and the docs' tables."""
    families = {}
    with open(GOLDEN, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"# TYPE (\S+) (\S+)", line)
            if m:
                families[m.group(1)] = m.group(2)
    with open(METRICS_DOC, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\|\s*`(apm_tls_proxy_\w+)`\s*\|\s*(\w+)\s*\|", line)
            if m:
                families.setdefault(m.group(1), m.group(2))
    names = set()
    for name, kind in families.items():
        names.add(name)
        if kind == "histogram":
            names.update(name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def metric_names(expr):
    """The metric names an expression selects: what is left of it once strings, label
    matchers, ranges, grouping clauses, Grafana variables and function calls are gone."""
    text = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = GROUPING.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    names = []
    for m in IDENTIFIER.finditer(text):
        word = m.group(0)
        if word.lower() in KEYWORDS or re.match(r"\s*\(", text[m.end():]):
            continue
        names.append(word)
    return names


def unknown_metrics(where, expr, known):
    problems = []
    names = metric_names(expr)
    if not names:
        problems.append(f"{where}: names no metric: {expr}")
    for name in names:
        if name not in known:
            problems.append(f"{where}: {name} is not a metric the proxy exports")
    return problems


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def lint_rules(path):
    known = exported_metrics()
    problems = []
    for group in load_yaml(path)["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            problems += unknown_metrics(f"{path}: {name}", rule["expr"], known)
    return problems


def lint_tests(rules_path, tests_path):
    """Each alert needs a case where it fires and a case where it must stay quiet."""
    alerts = {r["alert"] for g in load_yaml(rules_path)["groups"] for r in g["rules"] if "alert" in r}
    fires, quiet = set(), set()
    for test in load_yaml(tests_path)["tests"]:
        for case in test.get("alert_rule_test") or []:
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    problems = []
    for alert in sorted(alerts):
        if alert not in fires:
            problems.append(f"{tests_path}: no case where {alert} fires")
        if alert not in quiet:
            problems.append(f"{tests_path}: no case where {alert} must not fire (exp_alerts: [])")
    for alert in sorted((fires | quiet) - alerts):
        problems.append(f"{tests_path}: {alert} is not an alert of {rules_path}")
    return problems


def lint_rendered(rendered_path, rules_path):
    with open(rendered_path, encoding="utf-8") as f:
        specs = [d["spec"] for d in yaml.safe_load_all(f) if d and d.get("kind") == "PrometheusRule"]
    if len(specs) != 1:
        return [f"{rendered_path}: {len(specs)} PrometheusRule objects, expected 1"]
    if specs[0] != load_yaml(rules_path):
        return [f"{rendered_path}: the PrometheusRule's spec differs from {rules_path}"]
    return []


def panels_of(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def lint_dashboard(path):
    try:
        with open(path, encoding="utf-8") as f:
            dashboard = json.load(f)
    except (OSError, ValueError) as e:
        return [f"{path}: not valid JSON: {e}"]
    known = exported_metrics()
    problems = []
    for key in ("uid", "title", "schemaVersion", "panels", "templating"):
        if key not in dashboard:
            problems.append(f"{path}: no {key}")
    variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    if "datasource" not in variables:
        problems.append(f"{path}: no datasource variable (a fixed data source uid breaks import)")
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            query = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            expr = m.group(1) if m else query
            problems += unknown_metrics(f"{path}: variable {v['name']}", expr, known)
    ids = set()
    for panel in panels_of(dashboard):
        where = f"{path}: panel {panel.get('id')} \"{panel.get('title')}\""
        if panel.get("id") in ids:
            problems.append(f"{where}: id used twice")
        ids.add(panel.get("id"))
        if "gridPos" not in panel:
            problems.append(f"{where}: no gridPos")
        if panel.get("type") == "row":
            continue
        if not panel.get("targets"):
            problems.append(f"{where}: no queries")
        for target in panel.get("targets", []):
            uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
            if uid != "${datasource}":
                problems.append(f"{where}: data source {uid!r}, not the ${{datasource}} variable")
            if not target.get("expr"):
                problems.append(f"{where}: query {target.get('refId')} has no expr")
                continue
            problems += unknown_metrics(f"{where} query {target.get('refId')}", target["expr"], known)
    return problems


def dashboard_as_rules(path):
    """Every panel query as a recording rule, Grafana's variables replaced by values PromQL
    accepts, printed for `promtool check rules` (which parses each expression)."""
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    values = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
    rules = []
    for panel in panels_of(dashboard):
        for target in panel.get("targets", []):
            expr = re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), ".*"), target.get("expr", ""))
            rules.append({"record": f"panel_{panel.get('id')}_{target.get('refId')}", "expr": expr})
    print(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
    return []


def main(argv):
    commands = {"rules": (lint_rules, 1), "tests": (lint_tests, 2), "dashboard": (lint_dashboard, 1),
                "as-rules": (dashboard_as_rules, 1), "rendered": (lint_rendered, 2)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) != 2 + commands[argv[1]][1]:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    problems = commands[argv[1]][0](*argv[2:])
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
