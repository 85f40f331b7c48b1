"""spec -> manifests. Pure: no network, no clock, no randomness, no environment reads
(options come in as RenderOptions). The same inputs give byte-identical output."""

from __future__ import annotations

from ..spec.model import Function, Release
from . import eventing, keda, knative, slo
from .options import RenderOptions

__all__ = ["RenderOptions", "render_objects", "dump"]


def render_objects(fn: Function, release: Release, opts: RenderOptions) -> list[dict]:
    if fn.deployer == "keda":
        objs = keda.objects(fn, release, opts)
    else:
        objs = [knative.service(fn, release, opts), *eventing.sources(fn, opts)]
    if fn.slo is not None:
        objs.append(slo.prometheus_rule(fn, opts))
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

    return yaml.dump_all(objs, Dumper=Dumper, sort_keys=False, default_flow_style=False,
                         explicit_start=True, allow_unicode=True, width=1 << 16)
