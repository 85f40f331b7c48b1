"""spec -> manifests. Pure: no network, no clock, no randomness, no environment reads
(options come in as RenderOptions). The same inputs give byte-identical output."""

from __future__ import annotations

from ..spec.model import Function, Release
from . import dashboard, domain, eventing, keda, knative, monitor, slo
from .block import Block
from .options import RenderOptions

__all__ = ["RenderOptions", "render_objects", "dump"]


def render_objects(fn: Function, release: Release, opts: RenderOptions) -> list[dict]:
    if fn.deployer == "keda":
        objs = keda.objects(fn, release, opts)
    else:
        svc = knative.service(fn, release, opts)
        objs = [svc, *eventing.sources(fn, opts), *domain.objects(fn, opts)]
    if fn.slo is not None:
        if opts.platform.scrape == "podmonitor":
            objs.append(monitor.pod_monitor(fn, opts))
        objs.append(slo.prometheus_rule(fn, opts))
    if fn.deployer == "knative" and opts.platform.dashboard_labels:  # the queue-proxy's metrics: Knative only
        objs.append(dashboard.config_map(fn, release, svc["spec"]["template"]["metadata"]["name"], opts))
    return objs


def dump(objs: list[dict]) -> str:
    import yaml

    try:
        from yaml import CSafeDumper as Base
    except ImportError:  # pragma: no cover
        from yaml import SafeDumper as Base

    class Dumper(Base):
        def ignore_aliases(self, data):  # shared dicts must print in full, never as &id001
            return True

    Dumper.add_representer(Block, lambda d, text: d.represent_scalar("tag:yaml.org,2002:str", str(text), "|"))
    return yaml.dump_all(objs, Dumper=Dumper, sort_keys=False, default_flow_style=False,
                         explicit_start=True, allow_unicode=True, width=1 << 16)
