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
    assert kinds == ["Deployment", "Service", "Service", "HTTPScaledObject", "ScaledObject", "KafkaSource"]
    hso = objs[3]
    assert hso["metadata"]["annotations"] == {"httpscaledobject.keda.sh/skip-scaledobject-creation": "true"}
    assert hso["spec"]["scalingMetric"] == {"requestRate": {"targetValue": 20, "window": "1m", "granularity": "1s"}}
    so = objs[4]
    assert [t["type"] for t in so["spec"]["triggers"]] == ["external-push", "kafka", "kafka"]
    assert so["spec"]["cooldownPeriod"] == 120
    assert "replicas" not in objs[0]["spec"]


def test_part_of_label_is_a_plugin_env_setting(tmp_path):
    d = write(tmp_path, "runtime: python3.12\n")
    r = fnops("render", str(d), "--env", "dev", env={"ARGOCD_ENV_FNOPS_PART_OF": "shop"})
    assert "app.kubernetes.io/part-of: shop" in r.stdout


def refused_all(d, **environ):
    r = fnops("render", str(d), "--env", "dev", env=environ)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    return r.stderr.splitlines()


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
    hso = render(d, FNOPS_KEDA_HOSTS="wildcard")[3]
    assert hso["spec"]["hosts"] == ["fn.example.com", "*.fn.example.com", "fn"]
    assert fnops("validate", str(d), env={"FNOPS_KEDA_HOSTS": "wildcard"}).returncode == 0  # CI agrees when told

    write(tmp_path, spec.format("*"))
    assert "'*' would route every host to this function" in refused(d, FNOPS_KEDA_HOSTS="wildcard")
    assert render(d, FNOPS_KEDA_HOSTS="catch-all")[3]["spec"]["hosts"] == ["fn.example.com", "*", "fn"]
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


def test_pingsource_takes_macros_but_not_every(tmp_path):
    """F6: eventing's webhook refuses `@every` ("unsupported descriptor"), robfig/cron knows
    no L, W or #, and KEDA's cron scaler takes no macro at all."""
    d = write(tmp_path, "runtime: python3.12\nhttp: {visibility: none}\ntriggers:\n"
                        "  - cron: {schedule: '@every 1h30m'}\n  - cron: {schedule: '@hourly'}\n")
    assert refused(d) == (f"{d}/function.yaml:4:22: triggers[0].cron.schedule: '@every 1h30m': Knative's PingSource "
                          "refuses @every (eventing's webhook: unsupported descriptor); write a 5-field schedule, "
                          "e.g. */5 * * * * for every five minutes")
    (d / "function.yaml").write_text("runtime: python3.12\nhttp: {visibility: none}\ntriggers:\n"
                                     "  - cron: {schedule: '@hourly'}\n  - cron: {schedule: '0 9-17/2 ? jan-JUN Mon-FRI'}\n")
    pings = [o for o in render(d) if o["kind"] == "PingSource"]
    assert [p["spec"]["schedule"] for p in pings] == ["@hourly", "0 9-17/2 ? jan-JUN Mon-FRI"]
    for schedule, why in (("0 0 L * *", "day-of-month 'L' uses L, W or #"), ("0 0 * * 5#3", "day-of-week '5#3' uses"),
                          ("0 0 15W * *", "day-of-month '15W' uses"), ("0 0 * * 7", "day-of-week '7' is outside 0–6"),
                          ("*/0 * * * *", "has a step that is not a positive whole number"),
                          ("0 17-9 * * *", "hour '17-9' starts after it ends"), ("0 0 * * * *", "not a 5-field")):
        (d / "function.yaml").write_text(f"runtime: python3.12\nhttp: {{visibility: none}}\ntriggers:\n"
                                         f"  - cron: {{schedule: '{schedule}'}}\n")
        assert why in refused(d), schedule


def test_pingsource_data_goes_as_json_or_as_text(tmp_path):
    """F6: eventing decodes application/json data into a JSON object, so a string goes as text."""
    d = write(tmp_path, "runtime: python3.12\nhttp: {visibility: none}\ntriggers:\n"
                        "  - cron: {schedule: '0 2 * * *', data: {job: report, n: 2}}\n"
                        "  - cron: {schedule: '0 3 * * *', data: 'run: nightly'}\n  - cron: {schedule: '0 4 * * *'}\n")
    pings = [o["spec"] for o in render(d) if o["kind"] == "PingSource"]
    assert [(p.get("contentType"), p.get("data")) for p in pings] == [
        ("application/json", '{"job":"report","n":2}'), ("text/plain", "run: nightly"), (None, None)]
    (d / "function.yaml").write_text("runtime: python3.12\nhttp: {visibility: none}\ntriggers:\n"
                                     "  - cron: {schedule: '0 2 * * *', data: 42}\n")
    assert "triggers[0].cron.data: a PingSource sends a mapping as JSON or a string as text/plain" in refused(d)


def test_quantities_render_as_the_api_server_stores_them(tmp_path):
    """F2: a Knative Service is compared as plain JSON, so quantities must be rendered in
    apimachinery's canonical form (each pair checked against resource.Quantity's own
    round trip; the conformance harness checks the render compares Synced)."""
    from fnops.spec.units import quantity

    stored = {"0.5": "500m", "1024Mi": "1Gi", "1.5Gi": "1536Mi", "1536Mi": "1536Mi", "1000": "1k", "1200": "1200",
              "1.500": "1500m", "2000m": "2", "1e3": "1e3", "1.5e3": "1500", "0.5Ki": "512", "0.1Mi": "104857600m",
              "0.0000001": "100n", "1e-12": "1e-9", "+1": "1", ".5": "500m", "0Mi": "0", 0.25: "250m", 2: "2"}
    assert {k: quantity(k) for k in stored} == stored
    d = write(tmp_path, "runtime: python3.12\nresources: {cpu: 0.5, memory: 1024Mi, limits: {memory: '2048Mi'}}\n")
    c = ksvc(render(d))["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    (d / "function.yaml").write_text("runtime: python3.12\nresources: {memory: 99999999999999999999Ei}\n")
    assert refused(d).endswith("resources.memory: '99999999999999999999Ei' is larger than a Kubernetes quantity can be")


def test_scale_bounds_render_only_when_the_folder_sets_them(tmp_path):
    """F11: an explicit max-scale '0' is refused where the platform sets max-scale-limit,
    and min-scale '0' overrides the platform's own default."""
    ann = ksvc(render(write(tmp_path, "runtime: python3.12\n")))["spec"]["template"]["metadata"]["annotations"]
    assert not {"autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/max-scale"} & set(ann)
    ann = ksvc(render(write(tmp_path, "runtime: python3.12\nscale: {max: 4}\n")))["spec"]["template"]["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/max-scale"] == "4" and "autoscaling.knative.dev/min-scale" not in ann
    ann = ksvc(render(write(tmp_path, "runtime: python3.12\nscale: {min: 0, max: 0}\n")))["spec"]["template"]["metadata"]["annotations"]
    assert (ann["autoscaling.knative.dev/min-scale"], ann["autoscaling.knative.dev/max-scale"]) == ("0", "0")


def test_hpa_targets_are_what_autoscaler_keda_reads(tmp_path):
    """F10: autoscaler-keda truncates the target to an integer and reads memory as MiB."""
    d = write(tmp_path, "runtime: python3.12\nscale: {min: 1, metric: memory, target: 1Gi}\n")
    ann = ksvc(render(d))["spec"]["template"]["metadata"]["annotations"]
    assert (ann["autoscaling.knative.dev/metric"], ann["autoscaling.knative.dev/target"]) == ("memory", "1024")
    (d / "function.yaml").write_text("runtime: python3.12\nscale: {min: 1, metric: memory, target: 0.5}\n")
    assert "scale.target: 0.5 is not a whole number; with the HPA class a memory target is MiB per pod" in refused(d)
    (d / "function.yaml").write_text(PROM.format(deployer="").replace("target: 5", "target: 2.5")
                                     + "    serverAddress: http://p:9090\n")
    assert refused(d).endswith("scale.target: 2.5 is not a whole number; autoscaler-keda makes the HPA threshold an "
                               "integer (2.5 would become 2): scale the query so its target is whole (e.g. multiply "
                               "both by 10)")
    # deployer keda: KEDA's own prometheus scaler takes fractions; a memory quantity is a per-pod average
    (d / "function.yaml").write_text(PROM.format(deployer="deployer: keda\n").replace("target: 5", "target: 2.5")
                                     + "    serverAddress: http://p:9090\n")
    assert render(d)[-1]["spec"]["triggers"][0]["metadata"]["threshold"] == "2.5"
    (d / "function.yaml").write_text("runtime: python3.12\ndeployer: keda\nresources: {memory: 1Gi}\n"
                                     "scale: {min: 1, metric: memory, target: 0.5Gi}\n")
    so = next(o for o in render(d) if o["kind"] == "ScaledObject")
    assert so["spec"]["triggers"][-1] == {"type": "memory", "metricType": "AverageValue", "metadata": {"value": "512Mi"}}


def test_keda_cpu_and_memory_need_the_matching_request(tmp_path):
    """F7: KEDA's webhook refuses a cpu/memory trigger on a container without that request
    (or limit), and its utilization is a whole percent."""
    d = write(tmp_path, "runtime: python3.12\ndeployer: keda\nresources: {cpu: 100m}\nscale: {min: 1, metric: memory}\n")
    assert refused(d) == (f"{d}/function.yaml:4:25: scale.metric: 'memory' with deployer keda needs resources.memory: "
                          "KEDA's webhook refuses a memory trigger on a container without a memory request or limit")
    (d / "function.yaml").write_text("runtime: python3.12\ndeployer: keda\nresources: {cpu: 100m}\n"
                                     "scale: {min: 1, metric: cpu, target: 70.5}\n")
    assert "70.5 is not a whole number; KEDA's cpu scaler takes a whole utilization percent" in refused(d)
    (d / "function.yaml").write_text("runtime: python3.12\ndeployer: keda\nresources: {cpu: 100m}\n"
                                     "scale: {min: 0, metric: cpu}\n")
    assert "KEDA cannot scale to zero on cpu/memory alone" in refused(d)


def test_keda_http_enters_through_the_interceptor(tmp_path):
    """F9: `<fn>` is an ExternalName of the HTTP add-on's interceptor (which wakes a
    Deployment scaled to zero), the pods are behind `<fn>-app`, and the interceptor routes
    the names callers in the cluster use."""
    d = write(tmp_path, "runtime: python3.12\ndeployer: keda\nscale: {min: 0, max: 3}\n")
    objs = render(d, ARGOCD_APP_NAMESPACE="team-a")
    entry, app, hso = (next(o for o in objs if o["kind"] == k and o["metadata"]["name"] == n)
                       for k, n in (("Service", "fn"), ("Service", "fn-app"), ("HTTPScaledObject", "fn")))
    assert entry["spec"] == {"type": "ExternalName",
                             "externalName": "keda-add-ons-http-interceptor-proxy.keda.svc.cluster.local",
                             "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
    assert app["spec"]["selector"] == {"app.kubernetes.io/name": "fn"}
    assert hso["spec"]["scaleTargetRef"] == {"name": "fn", "service": "fn-app", "port": 80}
    assert hso["spec"]["hosts"] == ["fn.team-a", "fn.team-a.svc", "fn.team-a.svc.cluster.local"]
    objs = render(d, ARGOCD_APP_NAMESPACE="team-a", ARGOCD_ENV_FNOPS_KEDA_HTTP_INTERCEPTOR="proxy.ingress.svc.example:80")
    entry = next(o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == "fn")
    assert (entry["spec"]["externalName"], entry["spec"]["ports"][0]["port"]) == ("proxy.ingress.svc.example", 80)
    r = fnops("render", str(d), "--env", "dev", env={"FNOPS_KEDA_HTTP_INTERCEPTOR": "http://proxy:80"})
    assert r.returncode == 2 and "FNOPS_KEDA_HTTP_INTERCEPTOR='http://proxy:80' is not host:port" in r.stderr


def test_keda_kafka_trigger_gets_its_consumer(tmp_path):
    """F8: a KafkaSource consumes the very group KEDA measures and delivers to the pods,
    retrying while a Deployment scaled to zero starts."""
    d = write(tmp_path, "runtime: python3.12\ndeployer: keda\nhttp: {visibility: none}\ntriggers:\n"
                        "  - kafka: {bootstrapServers: ['k:9092'], topics: [a], lagThreshold: 10}\n"
                        "  - kafka: {bootstrapServers: ['k:9092'], topics: [b], delivery: {retry: 2}}\n")
    objs = render(d)
    assert [o["kind"] for o in objs] == ["Deployment", "Service", "ScaledObject", "KafkaSource", "KafkaSource"]
    deploy, app, so, first, second = objs
    assert deploy["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert [t["metadata"]["consumerGroup"] for t in so["spec"]["triggers"]] == ["fn-dev", "fn-dev-2"]
    assert [s["spec"]["consumerGroup"] for s in (first, second)] == ["fn-dev", "fn-dev-2"]
    assert first["spec"]["sink"] == {"ref": {"apiVersion": "v1", "kind": "Service", "name": app["metadata"]["name"]}}
    assert first["spec"]["delivery"] == {"retry": 8, "backoffPolicy": "exponential", "backoffDelay": "PT1S"}
    assert second["spec"]["delivery"] == {"retry": 2}
    assert "annotations" not in first["metadata"]  # the ScaledObject scales on lag, not the source's own KEDA


def test_kafka_consumer_group_is_stable_when_other_triggers_come_first(tmp_path):
    """F4: consumerGroup is immutable; it follows the source's own kafka ordinal."""
    kafka = "  - kafka: {bootstrapServers: ['k:9092'], topics: [a]}\n"
    cron = "  - cron: {schedule: '0 2 * * *'}\n"
    groups = []
    for triggers in (kafka, cron + kafka, cron + kafka + cron + kafka):
        objs = render(write(tmp_path, "runtime: python3.12\ntriggers:\n" + triggers, env="prod"), env="prod")
        groups.append({o["metadata"]["name"]: o["spec"]["consumerGroup"] for o in objs if o["kind"] == "KafkaSource"})
    assert groups == [{"fn-kafka": "fn-prod"}, {"fn-kafka": "fn-prod"}, {"fn-kafka": "fn-prod", "fn-kafka-2": "fn-prod-2"}]


def test_trigger_without_filter_renders_none(tmp_path):
    """F16: the webhook stores `filter: {}`; `filter: {attributes: {}}` would never compare equal."""
    d = write(tmp_path, "runtime: python3.12\ntriggers:\n  - event: {}\n  - event: {filter: {type: a}}\n")
    specs = [o["spec"] for o in render(d) if o["kind"] == "Trigger"]
    assert "filter" not in specs[0] and specs[1]["filter"] == {"attributes": {"type": "a"}}


def test_delivery_options_reach_triggers_and_kafka_sources(tmp_path):
    """F15: retries, backoff and a dead letter sink, as eventing's DeliverySpec."""
    d = write(tmp_path, "runtime: python3.12\ntriggers:\n"
                        "  - event: {delivery: {retry: 3, backoffPolicy: linear, backoffDelay: 250ms, deadLetterSink: fn-dlq}}\n"
                        "  - kafka: {bootstrapServers: ['k:9092'], topics: [a], delivery: {backoffDelay: 1m30s, "
                        "deadLetterSink: 'https://dlq.example/in'}}\n")
    objs = render(d)
    trig, src = (next(o for o in objs if o["kind"] == k) for k in ("Trigger", "KafkaSource"))
    assert trig["spec"]["delivery"] == {
        "deadLetterSink": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "fn-dlq"}},
        "retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.25S"}
    assert src["spec"]["delivery"] == {"deadLetterSink": {"uri": "https://dlq.example/in"}, "backoffDelay": "PT90S"}
    (d / "function.yaml").write_text("runtime: python3.12\ntriggers:\n  - cron: {schedule: '0 2 * * *', "
                                     "delivery: {retry: 3}}\n")
    assert refused(d) == (f"{d}/function.yaml:3:35: triggers[0].cron.delivery: a PingSource has no delivery options "
                          "in Knative Eventing (no retries, no dead letter sink); set delivery on kafka and event "
                          "triggers only")
    (d / "function.yaml").write_text("runtime: python3.12\ntriggers:\n  - event: {delivery: {retry: -1, "
                                     "backoffPolicy: fibonacci, deadLetterSink: 'not a sink'}}\n")
    err = refused_all(d)
    assert [e.split(": ", 1)[1].split(":")[0] for e in err] == [
        "triggers[0].event.delivery.retry", "triggers[0].event.delivery.backoffPolicy",
        "triggers[0].event.delivery.deadLetterSink"]


def test_a_folder_renders_only_objects_named_after_itself(tmp_path):
    """Issue 17: `name: checkout` in functions/fn rendered Service checkout and checkout-slo."""
    d = write(tmp_path, "runtime: python3.12\nname: checkout\nslo: {errorRate: 1%}\n")
    assert refused(d) == (f"{d}/function.yaml:2:7: name: 'checkout' is not this folder's name; objects are named "
                          "after the folder, so the only valid value is 'fn' (or leave 'name' out)")
    d = write(tmp_path, "runtime: python3.12\nslo: {errorRate: 1%}\n")
    assert {o["metadata"]["name"] for o in render(d)} == {"fn", "fn-slo", "fn-queue-proxy", "fn-dashboard"}
