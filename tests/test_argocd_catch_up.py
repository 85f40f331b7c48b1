"""The bridge's catch-up (bridge/catchup.py) against a Kubernetes API double that checks each
request against the Application CRD (tests/kube_api_double.py)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from click.testing import CliRunner

import argocd_states as S
from fnops.bridge import catchup
from fnops.bridge.origin import DEFAULT
from fnops.cli import cli
from fnops.errors import TemporaryError
from kube_api_double import KubeApiDouble

TOKEN = "sa-token-" + "s" * 24


def now_utc():
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def released(fn, env, t, *, version="3.2", **kw):
    """An Application whose release synced at t and turned healthy 30 s later."""
    a = S.App(version, fn, env, revision="a" * 40, image=f"ghcr.io/acme/functions/{fn}@sha256:" + "b" * 64,
              at=t - dt.timedelta(days=1), **kw)
    a.sync_started("c" * 40, t)
    a.sync_applied(t + dt.timedelta(seconds=2), f"ghcr.io/acme/functions/{fn}@sha256:" + "c" * 64)
    a.refreshed(t + dt.timedelta(seconds=3), "Progressing")
    return a, a.refreshed(t + dt.timedelta(seconds=30), "Healthy")


@pytest.fixture
def kube(tmp_path):
    with KubeApiDouble(TOKEN) as k:
        yield k
    assert k.violations == []


def source(kube, tmp_path, **kw):
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    return catchup.KubernetesApplications(kube.url, "argocd", token_file=str(token), **kw)


def test_it_pages_through_the_fnops_applications_with_the_serviceaccount_token(kube, tmp_path):
    t = now_utc() - dt.timedelta(minutes=10)
    for fn in ("checkout", "hello", "nightly-report", "order-events", "orders-consumer"):
        kube.put(released(fn, "dev", t)[1])
    stranger = released("guestbook", "dev", t)[1]
    stranger["metadata"]["labels"] = {"app": "guestbook"}  # not an fnops Application
    kube.put(stranger)
    elsewhere = released("hello", "prod", t)[1]
    elsewhere["metadata"]["namespace"] = "team-apps"
    kube.put(elsewhere)
    apps = source(kube, tmp_path, page=2).applications()
    assert sorted(a["metadata"]["name"] for a in apps) == ["checkout-dev", "hello-dev", "nightly-report-dev",
                                                          "order-events-dev", "orders-consumer-dev"]
    assert [r["query"].get("continue") is not None for r in kube.requests] == [False, True, True]
    # A projected token rotates: the next pass reads the file again.
    kube.token = TOKEN[::-1]
    (tmp_path / "token").write_text(kube.token)
    assert len(catchup.KubernetesApplications(kube.url, "argocd", token_file=str(tmp_path / "token")).applications()) == 5


@pytest.mark.parametrize("case", ["wrong token", "etcd down", "nothing listening"])
def test_a_failed_list_is_one_line_that_names_no_secret(kube, tmp_path, case, caplog):
    src = source(kube, tmp_path, timeout=2)
    if case == "wrong token":
        kube.token = "another"
    elif case == "etcd down":
        kube.down = True
    else:
        src.url = "http://127.0.0.1:9"
    with pytest.raises(TemporaryError) as e:
        src.applications()
    msg = str(e.value)
    assert "\n" not in msg and TOKEN not in msg and msg.startswith("catch-up: listing Applications in argocd")
    assert {"wrong token": "HTTP 401", "etcd down": "HTTP 503", "nothing listening": "refused"}[case] in msg
    taken = []
    cu = catchup.CatchUp(src, taken.append, DEFAULT, interval=60, max_age=86400)
    with caplog.at_level(logging.WARNING, logger="fnops.bridge"):
        assert cu.pass_logged() is False
    assert taken == [] and "next try in 60s" in caplog.text and TOKEN not in caplog.text


def test_a_pass_takes_what_each_state_implies_and_only_that(kube, tmp_path, caplog):
    t = now_utc() - dt.timedelta(minutes=10)
    a, healthy = released("checkout", "dev", t)
    kube.put(healthy)
    # Finished, but the controller has not refreshed it since: Argo CD's notifications skip it too.
    b, _ = released("hello", "dev", t)
    b.sync_started("e" * 40, t + dt.timedelta(seconds=80))
    kube.put(b.sync_applied(t + dt.timedelta(seconds=90), "ghcr.io/acme/functions/hello@sha256:" + "d" * 64))
    # Older than maxAge: the outbox may have forgotten it; it is not news any more.
    kube.put(released("order-events", "dev", t - dt.timedelta(days=3))[1])
    # Labelled as fnops' but not the function's own Application (origin check).
    odd = released("orders-consumer", "dev", t)[1]
    odd["metadata"]["name"] = "orders-consumer-copy"
    kube.put(odd)
    # Running, and a render failure of the branch.
    c, _ = released("nightly-report", "dev", t)
    kube.put(c.render_failed(t + dt.timedelta(seconds=60), "functions/nightly-report/function.yaml:1:1: boom"))
    d, _ = released("thumbnail-worker", "dev", t)
    kube.put(d.sync_started("f" * 40, t + dt.timedelta(seconds=100)))
    taken = []
    cu = catchup.CatchUp(source(kube, tmp_path), taken.extend, DEFAULT, interval=60, max_age=86400)
    with caplog.at_level(logging.WARNING, logger="fnops.bridge"):
        assert cu.run_once() == len(taken)
    got = sorted((e["app"], e["kind"], e["revision"]) for e in taken)
    # nightly-report's release still runs, healthy, while the branch fails to render.
    assert got == [("checkout-dev", "deployed", "c" * 40), ("checkout-dev", "syncing", "c" * 40),
                   ("nightly-report-dev", "deployed", "c" * 40), ("nightly-report-dev", "render-failed", ""),
                   ("nightly-report-dev", "syncing", "c" * 40),
                   ("thumbnail-worker-dev", "syncing", "f" * 40)]
    assert "orders-consumer-copy" in caplog.text and "ignored" in caplog.text
    # The same state gives the same events: the outbox folds a second pass.
    again = []
    catchup.CatchUp(source(kube, tmp_path), again.extend, DEFAULT, interval=60, max_age=86400).run_once()
    assert [e["key"] for e in again] == [e["key"] for e in taken]
    # The order within an Application is the order things happened: syncing first.
    kinds = [e["kind"] for e in taken if e["app"] == "checkout-dev"]
    assert kinds == ["syncing", "deployed"]


def _check(tmp_path, monkeypatch, catch_up: str, extra: str = ""):
    monkeypatch.setenv("T", "x")
    p = tmp_path / "bridge.yaml"
    p.write_text("auth: {bearerTokenEnv: T}\ngitops: {repo: https://github.com/acme/functions.git}\n"
                 f"argocd:\n  catchUp: {catch_up}\n{extra}")
    return CliRunner().invoke(cli, ["bridge", "check-config", str(p)])


def test_check_config_takes_the_clusters_own_api_and_refuses_what_would_lose_or_leak(tmp_path, monkeypatch):
    assert _check(tmp_path, monkeypatch, "{kubernetes: {}}").exit_code == 0
    r = _check(tmp_path, monkeypatch, "{kubernetes: {url: 'http://10.0.0.1:6443'}, maxAge: 200h}")
    assert r.exit_code == 2
    assert "argocd.catchUp.kubernetes.url: must be an https:// URL (plain http only to a loopback address)" in r.output
    assert "argocd.catchUp.maxAge: must be shorter than retention.doneAfter (604800s)" in r.output
    r = _check(tmp_path, monkeypatch, "{kubernetes: {url: 'https://k8s.example.com', tokenEnv: NOPE}, interval: 1s}")
    assert r.exit_code == 2
    assert "argocd.catchUp.kubernetes.tokenEnv: environment variable NOPE is not set" in r.output
    assert "argocd.catchUp.interval" in r.output
    assert "argocd.catchUp: 'kubernetes' is required" in _check(tmp_path, monkeypatch, "{interval: 5m}").output
