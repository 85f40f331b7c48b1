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
    ("bad-name", "runtime: python3.12\nname: Hello_World\n", None, 2, 7, "'Hello_World' is not a valid name"),
    ("name-too-long", f"runtime: python3.12\nname: {'a' * 60}\n", None, 2, 7, "at most 54"),
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
    ("canary-tag-length", f"runtime: python3.12\nname: {'b' * 54}\ntraffic: {{canary: 10}}\n", None, 3, 19,
     "tag host 'candidate-"),
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
    ("keda-cpu-only-to-zero", "runtime: python3.12\ndeployer: keda\nhttp: {visibility: none}\nscale: {metric: cpu}\n",
     None, 4, 8, "cannot scale to zero on cpu/memory alone"),
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
