"""Where a function × environment's news may come from, so labels alone prove nothing.

Anyone who can create an Argo CD Application or a PrometheusRule can put fnops' labels
(`fnops.dev/function`, `fnops_function`, …) on it. What they cannot choose is what the
platform decides: the name the ApplicationSet (argocd-cmp/applicationset.yaml) gives the
Application of a function in an environment, the namespace Argo CD creates it in, and the
namespace it deploys to — which `fnops render` writes into every object, the
PrometheusRule included, and which Prometheus Operator (`enforcedNamespaceLabel:
namespace`) stamps on every alert the rule fires. The bridge acts only on events whose
origin is that one, and says why it ignored any other.

The defaults are the names the shipped ApplicationSet gives; a platform that edits its
ApplicationSet says the same in the bridge config (`argocd.application`,
`argocd.applicationNamespace`, `argocd.namespace`).
"""

from __future__ import annotations

import string
from collections import namedtuple

from ..escape import shown

DEFAULT_APPLICATION = "{function}-{environment}"  # template.metadata.name: "{{.path.basenameNormalized}}-{{.env}}"
DEFAULT_APPLICATION_NAMESPACE = "argocd"  # metadata.namespace of the ApplicationSet; its Applications live there
DEFAULT_NAMESPACE = "functions-{environment}"  # the list generator's `namespace: functions-<env>`
FIELDS = ("function", "environment")


def template_problem(text: str) -> str | None:
    """Why `text` is not a name template over {function} and {environment} (None: it is)."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        return "unbalanced braces"
    for _, field, spec, conv in parts:
        if field is None:
            continue
        if field not in FIELDS or spec or conv:
            return f"'{{{shown(field, 30)}}}' is not one of {{function}}, {{environment}}"
    return None


class Origins(namedtuple("Origins", "application application_namespace namespace")):
    """application: a template; application_namespace: a name; namespace: a template, or a
    mapping environment -> namespace (an environment it does not list has no origin)."""

    __slots__ = ()

    def application_of(self, fn: str, env: str) -> str:
        return self.application.format(function=fn, environment=env)

    def namespace_of(self, fn: str, env: str) -> str | None:
        if isinstance(self.namespace, dict):
            return self.namespace.get(env)
        return self.namespace.format(function=fn, environment=env)

    def argocd(self, event: dict) -> str | None:
        """None when the event comes from the function's own Application, else why not."""
        fn, env = event["function"], event["environment"]
        want_app, want_ns = self.application_of(fn, env), self.application_namespace
        app, app_ns = event.get("app", ""), event.get("appNamespace", "")
        if app != want_app or app_ns != want_ns:
            return (f"Argo CD event for {fn} in {env} from application {shown(app_ns or '?')}/{shown(app)}, not "
                    f"{want_ns}/{want_app} (argocd.application, argocd.applicationNamespace)")
        dest = self.namespace_of(fn, env)
        if dest is None:
            return f"Argo CD event for {fn} in {env}: argocd.namespace names no namespace for {env}"
        if event.get("namespace") != dest:
            return (f"Argo CD event for {fn} in {env}: application {want_app} deploys to namespace "
                    f"{shown(event.get('namespace') or '?')}, not {dest} (argocd.namespace)")
        return None

    def alert(self, fn: str, env: str, labels: dict) -> str | None:
        """None when the alert comes from the function's namespace, else why not."""
        name = shown(labels.get("alertname") or "?")
        want = self.namespace_of(fn, env)
        if want is None:
            return f"alert {name} for {fn} in {env}: argocd.namespace names no namespace for {env}"
        got = labels.get("namespace")
        if not got:
            return (f"alert {name} for {fn} in {env} carries no namespace label (Prometheus Operator's "
                    "enforcedNamespaceLabel: namespace sets it)")
        if got != want:
            return f"alert {name} for {fn} in {env} comes from namespace {shown(got)}, not {want} (argocd.namespace)"
        return None


DEFAULT = Origins(DEFAULT_APPLICATION, DEFAULT_APPLICATION_NAMESPACE, DEFAULT_NAMESPACE)
