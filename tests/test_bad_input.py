"""Each kind of bad input: exit 2, one precise `path:line:col: message` line naming the
field and what would be valid, nothing on stdout, no traceback."""

import re
import textwrap

import pytest

from conftest import fnops

DIGEST = "sha256:" + "a" * 64
RELEASE = f"image: registry.example.com/fns/{{name}}:sha-1234567@{DIGEST}\n"

# (id, function.yaml, release text or None for the default, line, col, fragment of the message)
CASES = [
    ("unknown-key", "runtime: python3.12\nscael: {min: 1}\n", None, 2, 1,
     "scael: unknown key; did you mean 'scale'?"),
    ("unknown-nested-key", "runtime: python3.12\nscale:\n  minn: 1\n", None, 3, 3,
     "scale.minn: unknown key; did you mean 'min'?"),
    ("missing-runtime", "name: fn\n", None, 1, 1, "'runtime' is required"),
    ("bad-runtime", "runtime: python2.7\n", None, 1, 10, "runtime: 'python2.7' is not one of python3.11"),
    ("name-not-the-folder", "runtime: python3.12\nname: checkout\nslo: {errorRate: 1%}\n", None, 2, 7,
     "name: 'checkout' is not this folder's name; objects are named after the folder, so the only valid value is 'fn'"),
    ("name-invalid-and-not-the-folder", "runtime: python3.12\nname: Hello_World\n", None, 2, 7,
     "'Hello_World' is not this folder's name"),
    ("min-above-max", "runtime: python3.12\nscale: {min: 5, max: 2}\n", None, 2, 22, "max (2) is below min (5)"),
    ("window-range", "runtime: python3.12\nscale: {window: 2h}\n", None, 2, 17, "allowed 6s–1h"),
    ("window-fraction", "runtime: python3.12\nscale: {window: 1500ms}\n", None, 2, 17, "whole seconds"),
    ("delay-range", "runtime: python3.12\nscale: {scaleDownDelay: 2h}\n", None, 2, 25, "scaleDownDelay: '2h' is out of range; allowed 0s–1h"),
    ("target-too-small", "runtime: python3.12\nscale: {target: 0.001}\n", None, 2, 17, "allowed ≥ 0.01"),
    ("hpa-from-zero", "runtime: python3.12\nscale: {metric: cpu, target: 70}\n", None, 2, 8,
     "cannot scale from zero; set scale.min ≥ 1"),
    ("reserved-env", "runtime: python3.12\nenv:\n  PORT: '9000'\n", None, 3, 3, "env.PORT: 'PORT' is reserved by Knative"),
    ("env-bool", "runtime: python3.12\nenv:\n  DEBUG: yes\n", None, 3, 10, "env.DEBUG: value must be a string; quote it"),
    ("concurrency-range", "runtime: python3.12\nconcurrency: 5000\n", None, 2, 14, "allowed 0–1000"),
    ("timeout-range", "runtime: python3.12\ntimeout: 15m\n", None, 2, 10, "allowed 1s–10m"),
    ("kafka-no-topics", "runtime: python3.12\ntriggers:\n  - kafka: {bootstrapServers: [k:9092]}\n", None, 3, 12,
     "topics: is required"),
    ("cron-bad-schedule", "runtime: python3.12\ntriggers:\n  - cron: {schedule: 'every minute'}\n", None, 3, 22,
     "not a 5-field cron schedule"),
    ("cron-bad-zone", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '* * * * *', timezone: Mars/Olympus}\n",
     None, 3, 45, "'Mars/Olympus' is not an IANA time zone"),
    ("trigger-two-kinds", "runtime: python3.12\ntriggers:\n  - {cron: {schedule: '* * * * *'}, kafka: {}}\n", None, 3, 5,
     "exactly one key"),
    ("event-with-keda", "runtime: python3.12\ndeployer: keda\ntriggers:\n  - event: {broker: default}\n", None, 4, 5,
     "need deployer: knative"),
    ("keda-cpu-only-to-zero", "runtime: python3.12\ndeployer: keda\nhttp: {visibility: none}\nresources: {cpu: 100m}\n"
     "scale: {metric: cpu}\n", None, 5, 8, "cannot scale to zero on cpu/memory alone"),
    ("prometheus-missing-query", "runtime: python3.12\nscale: {min: 1, metric: prometheus, target: 5, prometheus: {serverAddress: 'http://p:9090'}}\n", None, 2, 60,
     "scale.prometheus.query: is required"),
    ("slo-bad-rate", "runtime: python3.12\nslo: {errorRate: 150%}\n", None, 2, 18, "between 0% and 100%"),
    ("event-only-no-triggers", "runtime: python3.12\nhttp: {visibility: none}\n", None, 2, 20, "has no triggers"),
    ("overlay-error-points-at-overlay", "runtime: python3.12\nscale: {min: 0}\nenvironments:\n  dev:\n    scale: {max: -1}\n",
     None, 5, 18, "scale.max: -1 is out of range"),
    ("overlay-cannot-rename", "runtime: python3.12\nenvironments:\n  dev:\n    name: other\n", None, 4, 5,
     "'name' cannot be overridden"),
    ("custom-tag", "runtime: !!python/object:os.system python3.12\n", None, 1, 10, "is not allowed (plain YAML only)"),
    ("local-tag", "runtime: !secret python3.12\n", None, 1, 10, "tag '!secret' is not allowed"),
    ("duplicate-key", "runtime: python3.12\nruntime: python3.11\n", None, 2, 1, "duplicate key 'runtime'"),
    ("two-documents", "runtime: python3.12\n---\nruntime: python3.11\n", None, 2, 1, "expected one YAML document"),
    ("syntax", "runtime: [python3.12\n", None, 2, 1, "invalid YAML"),
    ("not-a-mapping", "- runtime\n", None, 1, 1, "expected a mapping"),
    # release pins
    ("pin-not-digest", "runtime: python3.12\n", "image: registry.example.com/fns/{name}:latest\n", 1, 8,
     "is not pinned by digest"),
    ("pin-short-digest", "runtime: python3.12\n", "image: registry.example.com/fns/{name}@sha256:abc\n", 1, 8,
     "want sha256:<64 lowercase hex>"),
    ("pin-other-repo", "runtime: python3.12\nimage: ghcr.io/acme/fn\n", RELEASE, 1, 8,
     "is not this function's repository 'ghcr.io/acme/"),
    ("pin-other-name", "runtime: python3.12\n", f"image: registry.example.com/fns/other@{DIGEST}\n", 1, 8,
     "is not this function's repository (<registry>/"),
    ("pin-bad-commit", "runtime: python3.12\n", RELEASE + "source: {commit: abc123}\n", 2, 18, "not a full Git commit SHA"),
    ("pin-unknown-key", "runtime: python3.12\n", RELEASE + "imagee: x\n", 2, 1, "did you mean 'image'?"),
    ("pin-other-functions-revision", "runtime: python3.12\ntraffic: {canary: 10}\n",
     RELEASE + f"previous: {{image: 'registry.example.com/fns/fn@{DIGEST}', revision: checkout-1a2b3c4d}}\n", 2, 132,
     "previous.revision: 'checkout-1a2b3c4d' is not a revision of this function (fn-<8 hex>"),
    # numbers: finite, and ASCII digits only (str.isdigit and \d in a str pattern take '٣' and '３')
    ("target-nan-keda", "runtime: python3.12\ndeployer: keda\nscale: {target: .nan}\n", None, 3, 17,
     "scale.target: nan is not a finite number; allowed ≥ 0.01"),
    ("target-inf-keda", "runtime: python3.12\ndeployer: keda\nscale: {target: .inf}\n", None, 3, 17,
     "scale.target: inf is not a finite number"),
    ("target-nan-knative", "runtime: python3.12\nscale: {target: .NaN}\n", None, 2, 17, "is not a finite number"),
    ("target-fraction-keda-http", "runtime: python3.12\ndeployer: keda\nscale: {target: 0.5}\n", None, 3, 17,
     "0.5 is not a whole number ≥ 1; KEDA's HTTP add-on counts whole requests"),
    ("quantity-arabic-indic-digit", "runtime: python3.12\nresources: {cpu: '٣'}\n", None, 2, 18,
     "resources.cpu: '\\u0663' is not a Kubernetes quantity"),
    ("quantity-fullwidth-digits", "runtime: python3.12\nresources: {memory: '１２８Mi'}\n", None, 2, 21,
     "is not a Kubernetes quantity"),
    ("percent-unicode-digit", "runtime: python3.12\nslo: {errorRate: '٣%'}\n", None, 2, 18, "is not a percentage"),
    ("percent-nan", "runtime: python3.12\nslo: {errorRate: 'nan%'}\n", None, 2, 18, "is not a percentage"),
    ("handler-non-ascii", "runtime: python3.12\nhandler: 'hañdler:handle'\n", None, 2, 10, "is not module:function"),
    ("kafka-unicode-port", "runtime: python3.12\ntriggers:\n  - kafka: {bootstrapServers: ['k:٩٠٩٢'], topics: [a]}\n",
     None, 3, 32, "is not host:port"),
    ("cron-unicode-digit", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '٣ * * * *'}\n", None, 3, 22,
     "minute '\\u0663' is not a number"),
    ("pin-tag-unicode-digit", "runtime: python3.12\n", f"image: registry.example.com/fns/{{name}}:v٣@{DIGEST}\n", 1, 8,
     "is not a valid image tag"),
    # cron as robfig/cron reads it (F6, F7): no @every anywhere, no L/W/#, no macro for KEDA
    ("every-pingsource", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '@every 5m'}\n", None, 3, 22,
     "'@every 5m': Knative's PingSource refuses @every (eventing's webhook: unsupported descriptor)"),
    ("every-keda-window", "runtime: python3.12\ndeployer: keda\nhttp: {visibility: none}\ntriggers:\n"
     "  - cron: {start: '@every 5x', end: '0 18 * * *', timezone: UTC}\n", None, 5, 19,
     "KEDA's cron scaler takes 5-field schedules only, no @ macros or @every"),
    ("keda-macro", "runtime: python3.12\ndeployer: keda\nhttp: {visibility: none}\ntriggers:\n"
     "  - cron: {start: '0 8 * * *', end: '@midnight', timezone: UTC}\n", None, 5, 37, "@midnight is 0 0 * * *"),
    ("keda-empty-window", "runtime: python3.12\ndeployer: keda\nhttp: {visibility: none}\ntriggers:\n"
     "  - cron: {start: '0 8 * * *', end: '0 8 * * *', timezone: UTC}\n", None, 5, 37,
     "triggers[0].cron.end: '0 8 * * *' is the same as start"),
    ("cron-last-weekday", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '0 0 * * 5L'}\n", None, 3, 22,
     "day-of-week '5L' uses L, W or #"),
    ("cron-nth-weekday", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '0 0 * * MON#2'}\n", None, 3, 22,
     "day-of-week 'MON#2' uses L, W or #"),
    ("cron-sunday-seven", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '0 0 * * 7'}\n", None, 3, 22,
     "day-of-week '7' is outside 0–6"),
    ("cron-name-in-hours", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '0 MON * * *'}\n", None, 3, 22,
     "hour 'MON' is not a number ("),
    ("cron-macro-unknown", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '@fortnightly'}\n", None, 3, 22,
     "is not a cron macro"),
    # KEDA HTTP hosts: DNS names; wildcards only where the platform allows them
    ("host-catch-all", "runtime: python3.12\ndeployer: keda\nhttp: {hosts: ['*']}\n", None, 3, 16,
     "http.hosts[0]: '*' would route every host to this function; lowercase DNS names only"),
    ("host-wildcard", "runtime: python3.12\ndeployer: keda\nhttp: {hosts: ['*.example.com']}\n", None, 3, 16,
     "'*.example.com' is a wildcard; lowercase DNS names only (e.g. fn.example.com) unless the platform sets "
     "FNOPS_KEDA_HOSTS=wildcard"),
    ("host-uppercase", "runtime: python3.12\ndeployer: keda\nhttp: {hosts: [Fn.Example.com]}\n", None, 3, 16,
     "'Fn.Example.com' is not a host name"),
    ("host-with-path", "runtime: python3.12\ndeployer: keda\nhttp: {hosts: [fn.example.com/admin]}\n", None, 3, 16,
     "is not a host name"),
    # Kafka and broker names that end up in object fields and labels
    ("kafka-topic-chars", "runtime: python3.12\ntriggers:\n  - kafka: {bootstrapServers: ['k:9092'], topics: ['a b']}\n",
     None, 3, 52, "triggers[0].kafka.topics[0]: 'a b' is not a Kafka topic name"),
    ("kafka-port-range", "runtime: python3.12\ntriggers:\n  - kafka: {bootstrapServers: ['k:99999'], topics: [a]}\n",
     None, 3, 32, "a port 1–65535"),
    ("kafka-group-long", "runtime: python3.12\ntriggers:\n  - kafka: {bootstrapServers: ['k:9092'], topics: [a], "
     f"consumerGroup: {'g' * 300}}}\n", None, 3, 71, "is not a consumer group id"),
    ("broker-not-a-label", "runtime: python3.12\ntriggers:\n  - event: {broker: 'My Broker'}\n", None, 3, 21,
     "is not a Broker name"),
    # Prometheus server addresses KEDA would query
    ("prometheus-file-url", "runtime: python3.12\nscale: {min: 1, metric: prometheus, target: 5, prometheus: "
     "{query: up, serverAddress: 'file:///etc/passwd'}}\n", None, 2, 87, "is not an http(s) server URL"),
    ("prometheus-credentials", "runtime: python3.12\nscale: {min: 1, metric: prometheus, target: 5, prometheus: "
     "{query: up, serverAddress: 'http://u:p@prom:9090'}}\n", None, 2, 87, "carries credentials"),
    # limits on what one folder may make the renderer build (spec/limits.py)
    ("too-many-triggers", "runtime: python3.12\ntriggers:\n" + "  - event: {}\n" * 33, None, 3, 3,
     "triggers: 33 triggers; at most 32"),
    ("too-many-topics", "runtime: python3.12\ntriggers:\n  - kafka: {bootstrapServers: ['k:9092'], topics: ["
     + ",".join(f"t{i}" for i in range(65)) + "]}\n", None, 3, 51, "triggers[0].kafka.topics: 65 topics; at most 64"),
    ("too-many-servers", "runtime: python3.12\ntriggers:\n  - kafka: {bootstrapServers: ["
     + ",".join(f"k{i}:9092" for i in range(17)) + "], topics: [a]}\n", None, 3, 31, "17 servers; at most 16"),
    ("too-many-keda-scalers", "runtime: python3.12\ndeployer: keda\ntriggers:\n"
     + ("  - kafka: {bootstrapServers: ['k:9092'], topics: [" + ",".join(f"t{i}" for i in range(40)) + "]}\n") * 2,
     None, 4, 3, "every kafka topic and cron window is a trigger of the one ScaledObject: 80 here, at most 64"),
    ("too-many-env", "runtime: python3.12\nenv: {" + ", ".join(f"V{i}: x" for i in range(257)) + "}\n", None, 2, 6,
     "env: 257 variables; at most 256"),
    ("too-many-hosts", "runtime: python3.12\ndeployer: keda\nhttp: {hosts: ["
     + ",".join(f"h{i}.example.com" for i in range(33)) + "]}\n", None, 3, 15, "http.hosts: 33 hosts; at most 32"),
    ("too-many-secrets", "runtime: python3.12\nenvFrom: {secrets: [" + ",".join(f"s{i}" for i in range(33)) + "]}\n",
     None, 2, 20, "envFrom.secrets: 33 names; at most 32"),
    ("too-many-filters", "runtime: python3.12\ntriggers:\n  - event: {filter: {"
     + ", ".join(f"a{i}: x" for i in range(17)) + "}}\n", None, 3, 21, "17 attributes; at most 16"),
    ("too-many-environments", "runtime: python3.12\nenvironments:\n" + "".join(f"  e{i}: {{}}\n" for i in range(33)),
     None, 3, 3, "environments: 33 environments; at most 32"),
    ("cron-too-long", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '" + "1," * 100 + "1 * * * *'}\n", None, 3, 22,
     "a cron schedule is at most 128"),
    ("pin-too-large", "runtime: python3.12\n", RELEASE + "# pad\n" * 1000, 1, 1, "file is larger than 4 KiB"),
]


def _write(tmp_path, spec, release, name="fn"):
    d = tmp_path / name
    (d / "releases").mkdir(parents=True)
    (d / "function.yaml").write_text(spec)
    (d / "releases" / "dev.yaml").write_text((release or RELEASE).replace("{name}", name))
    return d


@pytest.mark.parametrize("spec,release,line,col,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_render_rejects_bad_input_with_one_precise_line(tmp_path, spec, release, line, col, fragment):
    d = _write(tmp_path, spec, release)
    r = fnops("render", str(d), "--env", "dev")
    assert r.returncode == 2, r.stdout
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    fname = "function.yaml" if release is None else "releases/dev.yaml"
    m = re.match(r"^(.+):(\d+):(\d+): (.*)$", lines[0])
    assert m, lines[0]
    assert m.group(1) == str(d / fname), lines[0]
    assert (int(m.group(2)), int(m.group(3))) == (line, col), lines[0]
    assert fragment in m.group(4), lines[0]


@pytest.mark.parametrize("folder,line,col,fragment", [
    ("Hello_World", 1, 1, "'Hello_World' is not a valid function name: lowercase letters, digits and '-', starting "
     "with a letter (it is the folder's name; rename the folder)"),
    ("a" * 60, 1, 1, "is 60 characters; at most 54"),
])
def test_the_folder_name_is_the_function_name(tmp_path, folder, line, col, fragment):
    d = _write(tmp_path, "runtime: python3.12\n", None, name=folder)
    r = fnops("render", str(d), "--env", "dev")
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"{d / 'function.yaml'}:{line}:{col}: "), r.stderr
    assert fragment in r.stderr, r.stderr


def test_a_name_that_repeats_the_folder_is_accepted(tmp_path):
    d = _write(tmp_path, "runtime: python3.12\nname: fn\n", None)
    r = fnops("render", str(d), "--env", "dev")
    assert r.returncode == 0, r.stderr
    assert "name: fn\n" in r.stdout


def test_canary_tag_host_must_fit_a_label(tmp_path):
    d = _write(tmp_path, "runtime: python3.12\ntraffic: {canary: 10}\n", None, name="b" * 54)
    r = fnops("render", str(d), "--env", "dev")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"{d / 'function.yaml'}:2:19: traffic.canary: with a canary the tag host 'candidate-b")


def test_billion_laughs_fails_fast_with_a_clear_message(tmp_path):
    bomb = textwrap.dedent("""\
        runtime: python3.12
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
        i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
        """)
    d = _write(tmp_path, bomb, None)
    r = fnops("render", str(d), "--env", "dev", timeout=20)
    assert r.returncode == 2 and r.stdout == ""
    assert "alias/anchor expansion is bounded" in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_oversized_file_is_refused(tmp_path):
    d = _write(tmp_path, "runtime: python3.12\n" + "# padding\n" * 30000, None)
    r = fnops("render", str(d), "--env", "dev")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().endswith("function.yaml:1:1: file is larger than 256 KiB")


def test_anchors_and_merge_keys_within_bounds_still_work(tmp_path):
    spec = ("runtime: python3.12\nscale: &s {min: 1, max: 3}\nenvironments:\n  dev:\n    scale: {<<: *s, max: 5}\n")
    d = _write(tmp_path, spec, None)
    r = fnops("render", str(d), "--env", "dev")
    assert r.returncode == 0, r.stderr
    assert "min-scale: '1'" in r.stdout and "max-scale: '5'" in r.stdout


def test_secret_values_never_appear_in_errors(tmp_path):
    secret = "s3cr3t-" + "x" * 20
    d = _write(tmp_path, f"runtime: python3.12\nenv:\n  PORT: {secret}\n", None)
    r = fnops("render", str(d), "--env", "dev")
    assert r.returncode == 2 and secret not in r.stderr
