"""`fnops validate` over a tree: two function folders (or two environments of one) that map
one domain. A single folder's render cannot see this; `fnops validate functions/` can."""

from __future__ import annotations

import os
from collections import namedtuple

from ..errors import Problem, SpecError
from ..escape import shown
from . import _doc
from .domains import DomainSettings, dns_name_problem
from .function import environments_of, merged_for
from .limits import MAX_ENVIRONMENTS
from .platform import Platform

Claim = namedtuple("Claim", "domain folder env problem")  # problem: where the name is written


def claims_of(folder: str, settings: DomainSettings) -> list[Claim]:
    """Each environment's domain as written in this folder (valid names only: a bad one is
    the folder's own problem, reported by validation)."""
    try:
        doc = _doc(folder)
    except SpecError:
        return []
    if not isinstance(doc.value, dict):
        return []
    out = []
    for env in environments_of(doc, folder)[:MAX_ENVIRONMENTS]:  # as many as validation checks
        m = merged_for(doc, env)
        http = m.value.get("http")
        value = http.get("domain") if isinstance(http, dict) else None
        where = ("http", "domain")
        if isinstance(value, dict):
            value, where = value.get("name"), where + ("name",)
        if not isinstance(value, str) or dns_name_problem(value, settings.cluster_domain):
            continue
        out.append(Claim(value, folder, env, m.problem(where, "")))
    return out


def conflicts(folders, settings: DomainSettings | None = None) -> list[Problem]:
    """Two claims of one name: different functions, or one function in two environments. A
    ClusterDomainClaim is cluster-wide and DNS points a name at one place, so either is a
    mistake fnops can see before a cluster does (there, the later DomainMapping stays
    Ready=False with DomainClaimed=False: "namespace … does not own ClusterDomainClaim")."""
    if settings is None:
        settings = Platform.from_environ().domains
    first: dict = {}
    out = []
    for folder in folders:
        for claim in claims_of(folder, settings):
            seen = first.setdefault(claim.domain, claim)
            if seen is claim:
                continue
            where = seen.problem
            who = (f"function '{os.path.basename(os.path.abspath(seen.folder))}'"
                   if os.path.abspath(seen.folder) != os.path.abspath(claim.folder) else "this function")
            out.append(claim.problem._replace(message=(
                f"http.domain: '{shown(claim.domain)}' (environment {claim.env}) is already claimed by {who} in "
                f"environment {seen.env} at {where.path}:{where.line}:{where.col}; one DomainMapping per name (its "
                "ClusterDomainClaim is cluster-wide): give each environment and function its own name")))
    return out
