"""What the renderer promises beyond the examples: revision naming, canary traffic,
scaling classes, KEDA HTTP — each output also passes the schemas and webhook rules."""

import yaml

import schemas
import webhook_rules
from conftest import fnops

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
REPO = "registry.example.com/fns/fn"


def write(tmp_path, spec, release=f"image: {REPO}:sha-1111111@{D1}\n", env="dev"):
    d = tmp_path / "fn"
    (d / "releases").mkdir(parents=True, exist_ok=True)
    (d / "function.yaml").write_text(spec)
    (d / "releases" / f"{env}.yaml").write_text(release)
    return d


def render(d, env="dev", **environ):
    r = fnops("render", str(d), "--env", env, env=environ)
    assert r.returncode == 0, r.stderr
    objs = list(yaml.safe_load_all(r.stdout))
    for o in objs:
        assert schemas.validate(o) == [], o
    assert webhook_rules.check_all(objs) == []
    return objs


def ksvc(objs):
    return next(o for o in objs if o["kind"] == "Service" and o["apiVersion"] == "serving.knative.dev/v1")


def test_revision_name_follows_the_template(tmp_path):
    d = write(tmp_path, "runtime: python3.12\n")
    first = ksvc(render(d))["spec"]["template"]["metadata"]["name"]
    assert first.startswith("fn-") and len(first) == len("fn-") + 8
    (d / "releases" / "dev.yaml").write_text(f"image: {REPO}:sha-2222222@{D2}\n")
    second = ksvc(render(d))["spec"]["template"]["metadata"]["name"]
    assert second != first
    (d / "function.yaml").write_text("runtime: python3.12\nenv: {A: b}\n")
    third = ksvc(render(d))["spec"]["template"]["metadata"]["name"]
    assert third not in (first, second)
    # Rolling the pin back to the first image with the first spec re-selects the first revision.
    (d / "function.yaml").write_text("runtime: python3.12\n")
    (d / "releases" / "dev.yaml").write_text(
        f"image: {REPO}:sha-1111111@{D1}\nrollbackOf: {REPO}:sha-2222222@{D2}\n")
    assert ksvc(render(d))["spec"]["template"]["metadata"]["name"] == first


def test_canary_splits_with_the_previous_revision(tmp_path):
    rel = f"image: {REPO}:sha-2222222@{D2}\nprevious: {{image: '{REPO}:sha-1111111@{D1}', revision: fn-0badc0de}}\n"
    d = write(tmp_path, "runtime: python3.12\ntraffic: {canary: 25}\n", rel)
    svc = ksvc(render(d))
    rev = svc["spec"]["template"]["metadata"]["name"]
    assert svc["spec"]["traffic"] == [
        {"revisionName": "fn-0badc0de", "latestRevision": False, "percent": 75, "tag": "stable"},
        {"revisionName": rev, "latestRevision": False, "percent": 25, "tag": "candidate"},
    ]


def test_without_previous_all_traffic_goes_to_latest(tmp_path):
    d = write(tmp_path, "runtime: python3.12\ntraffic: {canary: 25}\n")
    assert ksvc(render(d))["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]


def test_knative_defaults_are_explicit_so_argo_cd_sees_no_drift(tmp_path):
    svc = ksvc(render(write(tmp_path, "runtime: python3.12\n")))
    spec = svc["spec"]["template"]["spec"]
    assert spec["timeoutSeconds"] == 300 and spec["containerConcurrency"] == 0
    assert spec["enableServiceLinks"] is False
    c = spec["containers"][0]
    assert c["name"] == "user-container"
    assert c["readinessProbe"] == {"successThreshold": 1, "tcpSocket": {"port": 0}}
    assert c["image"] == f"{REPO}:sha-1111111@{D1}"


def test_cpu_metric_uses_hpa_class_with_string_annotations(tmp_path):
    objs = render(write(tmp_path, "runtime: python3.12\nscale: {min: 1, max: 4, metric: cpu, target: 70}\n"))
    ann = ksvc(objs)["spec"]["template"]["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/class"] == "hpa.autoscaling.knative.dev"
    assert ann["autoscaling.knative.dev/metric"] == "cpu"
    assert ann["autoscaling.knative.dev/target"] == "70"
    assert all(isinstance(v, str) for v in ann.values())
    assert not any(o["kind"] == "ScaledObject" for o in objs)


def test_prometheus_metric_uses_autoscaler_keda_annotations(tmp_path):
    spec = ("runtime: python3.12\nscale:\n  min: 1\n  metric: prometheus\n  target: 5\n  prometheus:\n"
            "    query: sum(rate(jobs_total[1m]))\n    serverAddress: http://prometheus.monitoring:9090\n")
    ann = ksvc(render(write(tmp_path, spec)))["spec"]["template"]["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/prometheus-query"] == "sum(rate(jobs_total[1m]))"
    assert ann["autoscaling.knative.dev/prometheus-address"] == "http://prometheus.monitoring:9090"
    assert "autoscaling.knative.dev/query" not in ann


def test_visibility_labels(tmp_path):
    svc = ksvc(render(write(tmp_path, "runtime: python3.12\nhttp: {visibility: cluster-local}\n")))
    assert svc["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    svc = ksvc(render(write(tmp_path, "runtime: python3.12\n")))
    assert "networking.knative.dev/visibility" not in svc["metadata"]["labels"]


def test_kafka_consumer_group_defaults_to_function_and_environment(tmp_path):
    spec = "runtime: python3.12\ntriggers:\n  - kafka: {bootstrapServers: ['k:9092'], topics: [a]}\n"
    objs = render(write(tmp_path, spec, env="prod"), env="prod")
    src = next(o for o in objs if o["kind"] == "KafkaSource")
    assert src["spec"]["consumerGroup"] == "fn-prod"
    assert "annotations" not in src["metadata"]  # no lag scaling asked


def test_keda_http_function_gets_one_scaled_object_with_the_http_scaler(tmp_path):
    spec = ("runtime: python3.12\ndeployer: keda\nhttp: {hosts: [fn.example.com]}\n"
            "scale: {min: 0, max: 5, metric: rps, target: 20, scaleDownDelay: 2m}\n"
            "triggers:\n  - kafka: {bootstrapServers: ['k:9092'], topics: [a, b], lagThreshold: 10}\n")
    objs = render(write(tmp_path, spec))
    kinds = [o["kind"] for o in objs]
    assert kinds == ["Deployment", "Service", "HTTPScaledObject", "ScaledObject"]
    hso = objs[2]
    assert hso["metadata"]["annotations"] == {"httpscaledobject.keda.sh/skip-scaledobject-creation": "true"}
    assert hso["spec"]["scalingMetric"] == {"requestRate": {"targetValue": 20, "window": "1m", "granularity": "1s"}}
    so = objs[3]
    assert [t["type"] for t in so["spec"]["triggers"]] == ["external-push", "kafka", "kafka"]
    assert so["spec"]["cooldownPeriod"] == 120
    assert "replicas" not in objs[0]["spec"]


def test_part_of_label_is_a_plugin_env_setting(tmp_path):
    d = write(tmp_path, "runtime: python3.12\n")
    r = fnops("render", str(d), "--env", "dev", env={"ARGOCD_ENV_FNOPS_PART_OF": "shop"})
    assert "app.kubernetes.io/part-of: shop" in r.stdout


def refused(d, **environ):
    """The one error line of a render that must fail as invalid input."""
    r = fnops("render", str(d), "--env", "dev", env=environ)
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
    return r.stderr.strip()


def test_keda_hosts_are_dns_names_unless_the_platform_allows_wildcards(tmp_path):
    spec = "runtime: python3.12\ndeployer: keda\nhttp: {{hosts: [fn.example.com, '{}']}}\n"
    d = write(tmp_path, spec.format("*.fn.example.com"))
    assert refused(d).startswith(f"{d}/function.yaml:3:32: http.hosts[1]: '*.fn.example.com' is a wildcard; "
                                 "lowercase DNS names only")
    # an Application's plugin env (ARGOCD_ENV_*) is not the platform: it cannot loosen this
    assert "is a wildcard" in refused(d, ARGOCD_ENV_FNOPS_KEDA_HOSTS="catch-all")
    hso = render(d, FNOPS_KEDA_HOSTS="wildcard")[2]
    assert hso["spec"]["hosts"] == ["fn.example.com", "*.fn.example.com"]
    assert fnops("validate", str(d), env={"FNOPS_KEDA_HOSTS": "wildcard"}).returncode == 0  # CI agrees when told

    write(tmp_path, spec.format("*"))
    assert "'*' would route every host to this function" in refused(d, FNOPS_KEDA_HOSTS="wildcard")
    assert render(d, FNOPS_KEDA_HOSTS="catch-all")[2]["spec"]["hosts"] == ["fn.example.com", "*"]
    r = fnops("render", str(d), "--env", "dev", env={"FNOPS_KEDA_HOSTS": "anything"})
    assert r.returncode == 2 and "FNOPS_KEDA_HOSTS='anything' is not one of dns, wildcard, catch-all" in r.stderr


PROM = "runtime: python3.12\n{deployer}scale:\n  min: 1\n  metric: prometheus\n  target: 5\n  prometheus:\n    query: up\n"


def test_prometheus_servers_come_from_the_platform(tmp_path):
    platform = {"FNOPS_PROMETHEUS_SERVER": "http://prometheus.monitoring:9090",
                "FNOPS_PROMETHEUS_SERVERS": "http://thanos.monitoring:9090"}
    d = write(tmp_path, PROM.format(deployer=""))
    assert refused(d).endswith("scale.prometheus.serverAddress: is required when metric is prometheus (e.g. "
                               "http://prometheus.monitoring:9090), unless the platform sets a default "
                               "(FNOPS_PROMETHEUS_SERVER)")
    ann = ksvc(render(d, **platform))["spec"]["template"]["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/prometheus-address"] == "http://prometheus.monitoring:9090"

    d = write(tmp_path, PROM.format(deployer="deployer: keda\n") + "    serverAddress: http://attacker.example:80\n")
    assert refused(d, **platform) == (
        f"{d}/function.yaml:9:20: scale.prometheus.serverAddress: 'http://attacker.example:80' is not a Prometheus "
        "this platform allows; valid: http://thanos.monitoring:9090, http://prometheus.monitoring:9090 (or leave "
        "serverAddress out for the default)")
    render(d)  # a platform that lists nothing restricts nothing (as before)
    d = write(tmp_path, PROM.format(deployer="deployer: keda\n") + "    serverAddress: http://thanos.monitoring:9090\n")
    so = render(d, **platform)[-1]
    assert so["spec"]["triggers"][0]["metadata"]["serverAddress"] == "http://thanos.monitoring:9090"
    r = fnops("render", str(d), "--env", "dev", env={"FNOPS_PROMETHEUS_SERVER": "file:///etc/passwd"})
    assert r.returncode == 2 and "FNOPS_PROMETHEUS_SERVER: 'file:///etc/passwd' is not an http(s) server URL" in r.stderr


def test_secrets_can_be_limited_to_what_the_platform_lists(tmp_path):
    allowed = {"FNOPS_ALLOWED_SECRETS": "{function}-*, shared-config"}
    d = write(tmp_path, "runtime: python3.12\nenvFrom: {secrets: [fn-db, shared-config]}\n")
    env_from = ksvc(render(d, **allowed))["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert env_from == [{"secretRef": {"name": "fn-db"}}, {"secretRef": {"name": "shared-config"}}]
    d = write(tmp_path, "runtime: python3.12\nenvFrom: {secrets: [fn-db, checkout-db]}\n")
    assert refused(d, **allowed) == (f"{d}/function.yaml:2:28: envFrom.secrets[1]: 'checkout-db' is not a secret this "
                                     "platform lets functions name (FNOPS_ALLOWED_SECRETS: fn-*, shared-config)")
    render(d)  # unset: the namespace is the boundary


def test_every_schedules_render_as_written(tmp_path):
    d = write(tmp_path, "runtime: python3.12\nhttp: {visibility: none}\ntriggers:\n"
                        "  - cron: {schedule: '@every 1h30m'}\n  - cron: {schedule: '@hourly'}\n")
    pings = [o for o in render(d) if o["kind"] == "PingSource"]
    assert [p["spec"]["schedule"] for p in pings] == ["@every 1h30m", "@hourly"]


def test_a_folder_renders_only_objects_named_after_itself(tmp_path):
    """Issue 17: `name: checkout` in functions/fn rendered Service checkout and checkout-slo."""
    d = write(tmp_path, "runtime: python3.12\nname: checkout\nslo: {errorRate: 1%}\n")
    assert refused(d) == (f"{d}/function.yaml:2:7: name: 'checkout' is not this folder's name; objects are named "
                          "after the folder, so the only valid value is 'fn' (or leave 'name' out)")
    d = write(tmp_path, "runtime: python3.12\nslo: {errorRate: 1%}\n")
    assert {o["metadata"]["name"] for o in render(d)} == {"fn", "fn-slo", "fn-queue-proxy", "fn-dashboard"}
