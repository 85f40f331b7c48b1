"""Hostile function folders, as an attacker with push access would write them. The CMP runs
`fnops render` on them inside Argo CD's repo-server for every app, so each must end with
exit 2 and one `path:line:col` line, inside 1 s of CPU and 128 MiB, leaking nothing from
outside the folder. Limits are real (setrlimit in the child, rusage read with wait4): a
regression to a quadratic parser or an unbounded expansion fails here."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys

import pytest

DIGEST = "sha256:" + "a" * 64
PIN = f"image: registry.example.com/fns/fn:sha-1234567@{DIGEST}\n"
CPU_SECONDS, MEMORY = 1.0, 128 << 20


def _limits():
    resource.setrlimit(resource.RLIMIT_CPU, (3, 3))  # a hard stop well past the asserted 1 s
    resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))


def run_bounded(args, cwd=None, env=None, stdin=None):
    """-> (exit code, stdout, stderr, cpu seconds, peak RSS bytes) of one child."""
    exe = shutil.which("fnops")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ARGOCD_", "FNOPS_", "GITHUB_", "GITOPS_"))}
    base.update(env or {})
    out, err = os.path.join(cwd or "/tmp", ".out"), os.path.join(cwd or "/tmp", ".err")
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.Popen([exe, *args], cwd=cwd, env=base, stdout=o, stderr=e,
                             stdin=stdin if stdin is not None else subprocess.DEVNULL, preexec_fn=_limits)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    with open(out) as o, open(err) as e:
        stdout, stderr = o.read(), e.read()
    os.unlink(out)
    os.unlink(err)
    return p.returncode, stdout, stderr, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def folder(tmp_path, spec: str, pin: str | None = PIN, name: str = "fn"):
    d = tmp_path / name
    (d / "releases").mkdir(parents=True)
    (d / "function.yaml").write_text(spec)
    if pin is not None:
        (d / "releases" / "dev.yaml").write_text(pin)
    return d


def _aliased_long_string():
    s = "A" * 10_000
    lines = ["runtime: python3.12", f"s0: &s0 \"{s}\""]
    lines.append("l1: &l1 [" + ",".join(["*s0"] * 10) + "]")
    lines.append("l2: &l2 [" + ",".join(["*l1"] * 10) + "]")
    lines.append("triggers:\n  - cron: {schedule: '* * * * *', data: {x: [" + ",".join(["*l2"] * 10) + "]}}")
    return "\n".join(lines) + "\n"


def _merge_bomb():
    keys = ", ".join(f"k{i}: {'v' * 200}" for i in range(200))
    lines = ["runtime: python3.12", f"base: &b {{{keys}}}"]
    lines += [f"m{i}: {{<<: [*b, *b, *b]}}" for i in range(100)]
    return "\n".join(lines) + "\n"


def _listed(items) -> str:
    return "[" + ",".join(items) + "]"


# Inputs every parse limit lets through, built to make the renderer multiply: each list that
# render/ repeats per item of another list, per trigger, per object or per environment.
LONG_SERVERS = _listed(f"'b{i:02d}{'k' * 247}.x:9092'" for i in range(16))  # 16 × 253-character hosts
KEDA = "runtime: python3.12\ndeployer: keda\n"


def _kafka(servers: str, topics) -> str:
    topics = _listed(f"t{i}" for i in range(topics)) if isinstance(topics, int) else topics
    return f"  - kafka: {{bootstrapServers: {servers}, topics: {topics}}}\n"


# (id, function.yaml, release text, what the one line must say)
CASES = [
    ("redos-duration-15k-digits", f"runtime: python3.12\ntimeout: \"{'1' * 15000}\"\n", PIN,
     "not a duration: longer than 32 characters"),
    ("redos-duration-40k-digits", f"runtime: python3.12\ntimeout: \"{'1' * 40000}\"\n", PIN, "value longer than 16 KiB"),
    ("redos-slo-latency", f"runtime: python3.12\nslo: {{latencyP95: \"{'9' * 15000}ms\"}}\n", PIN,
     "not a duration"),
    ("redos-window", f"runtime: python3.12\nscale: {{window: \"{'5' * 15000}s\"}}\n", PIN, "not a duration"),
    ("alias-amplified-string", _aliased_long_string(), PIN, "alias/anchor expansion is bounded"),
    ("merge-key-amplification", _merge_bomb(), PIN, "alias/anchor expansion is bounded"),
    ("billion-laughs", "runtime: python3.12\na: &a [" + ",".join(['"lol"'] * 9) + "]\n"
     + "".join(f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi")), PIN,
     "alias/anchor expansion is bounded"),
    # libyaml ≥ 0.2.5 may stop this at its own 1,000 levels first: either way one bounded line
    ("deep-flow-sequences", "runtime: python3.12\nx: " + "[" * 100_000 + "\n", PIN, "nesting"),
    ("deep-block-mappings", "runtime: python3.12\n" + "".join(f"{' ' * i}k{i}:\n" for i in range(80)) + " " * 80 + "v\n",
     PIN, "nesting deeper than 64 levels"),
    ("huge-list", "runtime: python3.12\nx: [" + ",".join(["1"] * 30_000) + "]\n", PIN, "more than 20000 values"),
    ("big-integer", f"runtime: python3.12\nconcurrency: {'7' * 5000}\n", PIN, "number longer than 32 characters"),
    ("big-float", f"runtime: python3.12\nscale: {{target: {'7' * 400}.5}}\n", PIN, "number longer than 32 characters"),
    ("control-chars-in-name", "runtime: python3.12\nname: \"a\\u0007\\nb::warning::x\"\n", PIN,
     "is not this folder's name"),
    ("long-timezone", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '* * * * *', timezone: \""
     + "Europe/" * 1000 + "Berlin\"}\n", PIN, "is not an IANA time zone"),
    ("long-unknown-key", f"runtime: python3.12\n? {'k' * 10000}\n: 1\n", PIN, "unknown key"),
    ("oversized-file", "runtime: python3.12\n" + "# pad\n" * 50_000, PIN, "file is larger than 256 KiB"),
    ("pin-big-integer", "runtime: python3.12\n", PIN + f"releasedAt: {'1' * 3000}\n", "number longer than 32"),
    ("pin-deep", "runtime: python3.12\n", PIN + "source: " + "[" * 3_000 + "\n", "nesting"),
    # KEDA repeats the server list once per topic: 2,000 topics × 4 KiB of servers was 257 MiB
    ("keda-topics-times-servers", KEDA + "triggers:\n" + _kafka(LONG_SERVERS, 2000), PIN,
     "triggers[0].kafka.topics: 2000 topics; at most 64"),
    ("keda-servers-times-topics", KEDA + "triggers:\n" + _kafka(_listed(f"k{i}:9092" for i in range(5000)), 64), PIN,
     "triggers[0].kafka.bootstrapServers: 5000 servers; at most 16"),
    ("keda-topics-across-triggers", KEDA + "triggers:\n" + _kafka(f"&s {LONG_SERVERS}", 64) + _kafka("*s", 64) * 31, PIN,
     "every kafka topic and cron window is a trigger of the one ScaledObject: 2048 here, at most 64"),
    ("keda-many-cron-windows", KEDA + "triggers:\n"
     + "  - cron: {start: '0 8 * * *', end: '0 9 * * *', timezone: UTC}\n" * 3000, PIN,
     "triggers: 3000 triggers; at most 32"),
    ("many-event-triggers", "runtime: python3.12\ntriggers:\n" + "  - event: {}\n" * 6000, PIN,
     "triggers: 6000 triggers; at most 32"),
    ("many-kafka-sources", "runtime: python3.12\ntriggers:\n" + _kafka("&s [k:9092]", 1) + _kafka("*s", 1) * 2999, PIN,
     "triggers: 3000 triggers; at most 32"),
    ("many-env", "runtime: python3.12\nenv:\n" + "".join(f"  V{i}: x\n" for i in range(9000)), PIN,
     "env: 9000 variables; at most 256"),
    ("keda-many-hosts", KEDA + "http: {hosts: " + _listed(f"h{i}" for i in range(15000)) + "}\n", PIN,
     "http.hosts: 15000 hosts; at most 32"),
    ("many-secrets", "runtime: python3.12\nenvFrom: {secrets: " + _listed(f"s{i}" for i in range(15000)) + "}\n", PIN,
     "envFrom.secrets: 15000 names; at most 32"),
    ("many-config-maps", "runtime: python3.12\nenvFrom: {configMaps: " + _listed(f"c{i}" for i in range(15000))
     + "}\n", PIN, "envFrom.configMaps: 15000 names; at most 32"),
    ("many-filter-attributes", "runtime: python3.12\ntriggers:\n  - event: {filter: {"
     + ",".join(f"a{i}: v" for i in range(9000)) + "}}\n", PIN, "triggers[0].event.filter: 9000 attributes; at most 16"),
    # `fnops validate` checks every environment: overlays × the document was quadratic
    ("many-environments", "runtime: python3.12\nenv: {" + ",".join(f"V{i}: x" for i in range(200)) + "}\n"
     "environments:\n" + "".join(f"  e{i}: {{}}\n" for i in range(5000)), PIN, "environments: 5000 environments; at most 32"),
    ("long-cron", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '" + "1," * 5000 + "1 * * * *'}\n", PIN,
     "a cron schedule is at most 128"),
    ("cron-long-number", "runtime: python3.12\ntriggers:\n  - cron: {schedule: '" + "9" * 100 + " * * * *'}\n", PIN,
     "is not a number"),
    ("quantity-huge-exponent", "runtime: python3.12\nresources: {cpu: '1e" + "9" * 60 + "'}\n", PIN,
     "is larger than a Kubernetes quantity can be"),
    ("quantity-tiny-exponent", "runtime: python3.12\nresources: {cpu: '1e-" + "9" * 60 + "'}\nscale: {min: -1}\n",
     PIN, "scale.min: -1 is out of range"),
    ("pin-many-values", "runtime: python3.12\n", PIN + "x: [" + ",".join(["1"] * 2500) + "]\n", "larger than 4 KiB"),
]


@pytest.mark.parametrize("spec,pin,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_folder_is_refused_within_bounds(tmp_path, spec, pin, fragment):
    d = folder(tmp_path, spec, pin)
    for args in (["render", str(d), "--env", "dev"], ["validate", str(d)]):
        code, out, err, cpu, rss = run_bounded(args, cwd=str(tmp_path))
        assert code == 2, (args[0], err[-500:])
        problems = [line for line in err.splitlines() if not line.endswith("with problems")]
        assert len(problems) == 1 and fragment in problems[0], (args[0], err[:500])
        assert len(problems[0]) < 600 and "Traceback" not in err
        assert cpu < CPU_SECONDS and rss < MEMORY, (args[0], cpu, rss >> 20)
        if args[0] == "render":
            assert out == ""


def test_links_out_of_the_folder_are_not_read(tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("image: hunter2-secret-value\n")
    cases = {"outside-file": str(secret), "stdin": "/dev/stdin", "proc": "/proc/self/environ"}
    for name, target in cases.items():
        d = folder(tmp_path / name, "runtime: python3.12\n", pin=None)
        os.symlink(target, d / "releases" / "dev.yaml")
        r, w = os.pipe()  # a stdin nobody ever writes to: reading it would hang
        try:
            code, out, err, cpu, rss = run_bounded(["render", str(d), "--env", "dev"], cwd=str(tmp_path), stdin=r,
                                                   env={"SECRET_TOKEN": "hunter2-secret-value"})
        finally:
            os.close(r)
            os.close(w)
        assert code == 2 and out == "", (name, err)
        assert err.strip().endswith("releases/dev.yaml:1:1: is a link to outside the function folder; not read"), err
        assert "hunter2" not in err and cpu < CPU_SECONDS


def test_a_fifo_or_device_inside_the_folder_is_not_read(tmp_path):
    d = folder(tmp_path, "runtime: python3.12\n", pin=None)
    os.mkfifo(d / "releases" / "dev.yaml")
    code, out, err, cpu, _ = run_bounded(["render", str(d), "--env", "dev"], cwd=str(tmp_path))
    assert code == 2 and err.strip().endswith("releases/dev.yaml:1:1: is not a regular file; not read"), err
    assert cpu < CPU_SECONDS


def test_a_function_yaml_link_inside_the_folder_still_works(tmp_path):
    d = folder(tmp_path, "runtime: python3.12\n")
    (d / "base.yaml").write_text("runtime: python3.12\n")
    os.unlink(d / "function.yaml")
    os.symlink("base.yaml", d / "function.yaml")
    code, out, err, _, _ = run_bounded(["render", str(d), "--env", "dev"], cwd=str(tmp_path))
    assert code == 0 and "kind: Service" in out, err


@pytest.mark.parametrize("env", ["../../x", "dev/../prod", "Dev", "a" * 64, "dev\n", ""])
def test_environment_names_are_dns_labels_before_they_name_a_file(tmp_path, env):
    d = folder(tmp_path, "runtime: python3.12\n")
    (tmp_path / "x.yaml").write_text(PIN)
    code, out, err, _, _ = run_bounded(["render", str(d)], cwd=str(tmp_path), env={"ARGOCD_ENV_FNOPS_ENV": env})
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert ("not an environment name" in err) or (env == "" and "no environment" in err)


def test_release_files_that_are_not_environments_are_reported(tmp_path):
    d = folder(tmp_path, "runtime: python3.12\n")
    (d / "releases" / "Not_An_Env.yaml").write_text(PIN)
    code, _, err, _, _ = run_bounded(["validate", str(d)], cwd=str(tmp_path))
    assert code == 2 and "releases/Not_An_Env.yaml:1:1: not an environment's pin" in err


def test_a_newline_in_a_folder_name_injects_no_workflow_command(tmp_path):
    name = "x\n::stop-commands::pwned\n::warning file=a::injected"
    d = folder(tmp_path, "runtime: python3.12\n", name=name)
    code, out, err, _, _ = run_bounded(["validate", str(d)], cwd=str(tmp_path), env={"GITHUB_ACTIONS": "true"})
    assert code == 2
    for line in (out + err).splitlines():
        assert not line.startswith("::") or line.startswith("::error file="), line
    (annotation,) = [line for line in out.splitlines() if line.startswith("::error")]
    path = annotation[len("::error file="):].split(",line=")[0]
    assert "%0A" in path and "%3A%3Astop-commands%3A%3A" in path  # the property is escaped
    assert len(err.strip().splitlines()) == 2  # the problem and the summary: nothing broke the line


def test_render_output_is_capped(monkeypatch, tmp_path):
    from fnops.errors import SpecError
    from fnops.render import cmp

    d = folder(tmp_path, "runtime: python3.12\nenv: {A: '" + "x" * 2000 + "'}\n")
    monkeypatch.setattr(cmp, "MAX_OUTPUT_BYTES", 1024)
    with pytest.raises(SpecError) as e:
        cmp.render_text(str(d), "dev", environ={})
    assert str(e.value.problems[0]).endswith("function.yaml:2:1: env: the manifests would be larger than 1 KiB "
                                            "(the limit for one app); this is the largest field, trim it")


# Valid folders at every limit at once, each as large as yamldoc lets it be (anchors reach
# the 512 KiB expansion bound): what the renderer builds stays bounded with nothing refused.
WIDEST = {
    "keda-every-limit": KEDA + "http: {hosts: " + _listed(f"h{i:02d}{'a' * 60}.{'b' * 63}.{'c' * 63}.{'d' * 61}"
                                                         for i in range(32)) + "}\n"
    "triggers:\n  - kafka: {bootstrapServers: " + LONG_SERVERS + ", topics: "
    + _listed(f"t{i:02d}{'x' * 246}" for i in range(64)) + f", consumerGroup: '{'g' * 255}', lagThreshold: 5}}\n"
    "envFrom: {secrets: " + _listed(f"s{i}" for i in range(32)) + "}\n"
    "env:\n" + "".join(f"  V{i}: &v '{'v' * 1900}'\n" if i == 0 else f"  V{i}: *v\n" for i in range(256)),
    "knative-every-limit": "runtime: python3.12\ntriggers:\n"
    + _kafka(f"&s {LONG_SERVERS}", "&t " + _listed(f"t{i:02d}{'x' * 246}" for i in range(64))) + _kafka("*s", "*t") * 13
    + "".join(f"  - event: {{broker: b{i}, filter: {{" + ",".join(f"a{j}: {'v' * 200}" for j in range(16)) + "}}\n"
              for i in range(18)),
}


@pytest.mark.parametrize("spec", WIDEST.values(), ids=WIDEST.keys())
def test_the_widest_valid_folder_renders_within_bounds(tmp_path, spec):
    d = folder(tmp_path, spec)
    code, out, err, cpu, rss = run_bounded(["render", str(d), "--env", "dev"], cwd=str(tmp_path))
    assert code == 0, err[-500:]
    assert 256 << 10 < len(out) <= 1 << 20  # wide indeed, and within the one-app limit
    assert cpu < CPU_SECONDS and rss < MEMORY, (cpu, rss >> 20)


def test_the_keda_multiplication_is_refused_before_it_is_built(tmp_path):
    """Issue 17: 18 servers of 10,000 characters × 10,000 topics passed every input limit
    and asked the renderer for 1.8 GB (a MemoryError traceback at 508 MiB, 1.6 s); the
    counts are now refused where they are written."""
    servers = _listed(f"'b{i:02d}{'k' * 9990}:9092'" for i in range(18))
    d = folder(tmp_path, KEDA + "triggers:\n" + _kafka(servers, 10_000))
    code, out, err, cpu, rss = run_bounded(["render", str(d), "--env", "dev"], cwd=str(tmp_path))
    assert code == 2 and out == "" and "Traceback" not in err, err[-500:]
    assert err.splitlines() == [f"{d}/function.yaml:4:31: triggers[0].kafka.bootstrapServers: 18 servers; at most 16",
                                f"{d}/function.yaml:4:180060: triggers[0].kafka.topics: 10000 topics; at most 64"]
    assert cpu < CPU_SECONDS and rss < MEMORY, (cpu, rss >> 20)


def test_output_that_escaping_grows_names_the_field_that_grew(tmp_path):
    """Control characters become six-byte JSON escapes in cron data: every limit holds, and
    the manifests would still pass 1 MiB. The last check names the field and the limit."""
    blob = '"' + "\\x01" * 16_000 + '"'
    spec = ("runtime: python3.12\nhttp: {visibility: none}\ntriggers:\n"
            f"  - cron: {{schedule: '* * * * *', data: &d {blob}}}\n" + "  - cron: {schedule: '* * * * *', data: *d}\n" * 20)
    d = folder(tmp_path, spec)
    code, out, err, cpu, rss = run_bounded(["render", str(d), "--env", "dev"], cwd=str(tmp_path))
    assert code == 2 and out == "", err
    assert err.strip() == (f"{d}/function.yaml:3:1: triggers: the manifests would be larger than 1024 KiB "
                           "(the limit for one app); this is the largest field, trim it")
    assert cpu < CPU_SECONDS and rss < MEMORY, (cpu, rss >> 20)


def test_ten_thousand_problems_cost_a_bounded_report(tmp_path):
    spec = "runtime: python3.12\n" + "".join(f"key{i}: 1\n" for i in range(9000))
    d = folder(tmp_path, spec)
    for args in (["render", str(d), "--env", "dev"], ["validate", str(d)]):
        code, out, err, cpu, rss = run_bounded(args, cwd=str(tmp_path))
        lines = [line for line in err.splitlines() if not line.endswith("with problems")]
        assert code == 2 and len(lines) == 101, (args[0], len(lines))
        assert lines[0].startswith(f"{d}/function.yaml:2:1: key0: unknown key"), lines[0]
        assert lines[-1].endswith("function.yaml:1:1: … and 8900 more problems (the first 100 are shown)"), lines[-1]
        assert cpu < CPU_SECONDS and rss < MEMORY, (args[0], cpu, rss >> 20)


def test_many_pins_are_listed_once_and_checked_up_to_the_limit(tmp_path):
    d = folder(tmp_path, "runtime: python3.12\n")
    from fnops.spec.limits import MAX_RELEASE_BYTES

    # as many values as a pin may hold: the slowest pin to parse
    heavy = PIN + "x: [" + ",".join(["1"] * ((MAX_RELEASE_BYTES - len(PIN) - 6) // 2)) + "]\n"
    for i in range(20_000):  # a set, not a list scan, for each: this was quadratic on every render
        (d / "releases" / f"e{i:05d}.yaml").write_text(heavy if i < 100 else PIN)
    code, out, err, cpu, _ = run_bounded(["render", str(d), "--env", "dev"], cwd=str(tmp_path))
    assert code == 0 and cpu < CPU_SECONDS, (err, cpu)
    code, out, err, cpu, rss = run_bounded(["validate", str(d)], cwd=str(tmp_path))
    assert code == 2 and cpu < CPU_SECONDS and rss < MEMORY, (err[-300:], cpu)
    assert f"{d}/releases:1:1: 20001 environments (overlays and pins together); at most 32, and only those are checked" in err


def test_no_case_is_slow_in_process():
    """The same corpus, parsed in this process: a cheap guard that the bounds hold without
    the process start-up in the measurement."""
    import time

    from fnops import yamldoc
    from fnops.errors import SpecError

    for case_id, spec, _, _ in CASES:
        t0 = time.process_time()
        try:
            yamldoc.loads(spec, "function.yaml")
        except SpecError:
            pass
        assert time.process_time() - t0 < CPU_SECONDS, case_id


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("rlimits and /proc are Linux's")


# --- the CLI in CI: arguments, remotes and tokens ---------------------------------------

@pytest.fixture
def clone(tmp_path):
    from gitrepo import clone as make_clone
    from gitrepo import make_origin

    origin = make_origin(tmp_path)
    return origin, make_clone(origin, tmp_path / "work")


@pytest.mark.parametrize("fn", ["../../../../tmp/fnops-escape", "hello/../../x", "-rf", "Hello", "a" * 60])
def test_function_arguments_are_names_before_they_touch_a_path(clone, fn):
    from gitrepo import git

    origin, work = clone
    tip = git(origin, "rev-parse", "main")
    for args in (["bump", fn, "--env", "dev", "--image", f"registry.example.com/fns/x@{DIGEST}"],
                 ["rollback", fn, "--env", "dev"], ["promote", fn, "--from", "dev", "--to", "prod"]):
        code, out, err, _, _ = run_bounded(args, cwd=work)
        assert code == 2 and ("is not a function name" in err or "No such option" in err), (args, err)
    assert not os.path.exists("/tmp/fnops-escape") and git(origin, "rev-parse", "main") == tip


@pytest.mark.parametrize("url", ["--upload-pack=touch /tmp/fnops-pwned", "-oProxyCommand=x"])
def test_a_remote_that_looks_like_an_option_is_refused(clone, url):
    _, work = clone
    code, _, err, _, _ = run_bounded(["bump", "hello", "--env", "dev", "--image",
                                      f"ghcr.io/acme/functions/hello@{DIGEST}", "--gitops-repo", url], cwd=work)
    assert code == 2 and "is not a Git remote URL" in err and not os.path.exists("/tmp/fnops-pwned")


def test_a_token_is_never_sent_over_plain_http_off_loopback(clone):
    _, work = clone
    code, _, err, _, _ = run_bounded(["bump", "hello", "--env", "dev", "--image",
                                      f"ghcr.io/acme/functions/hello@{DIGEST}", "--gitops-repo",
                                      "http://gitops.example.com/acme/gitops.git"], cwd=work,
                                     env={"GITOPS_TOKEN": "ghs_plain_http_secret"})
    assert code == 2 and "refusing to send a token over plain http" in err and "ghs_plain" not in err


def test_github_token_goes_only_to_the_github_host(clone, tmp_path):
    """GITHUB_TOKEN (no GITOPS_TOKEN) with a non-GitHub remote: git never sees it."""
    from git_http import GitHttpServer

    origin, work = clone
    secret = "ghs_" + "G" * 36
    with GitHttpServer(os.path.dirname(origin), secret) as srv:
        url = f"{srv.url}/{os.path.basename(origin)}"
        code, _, err, _, _ = run_bounded(["bump", "hello", "--env", "dev", "--image",
                                          f"ghcr.io/acme/functions/hello@{DIGEST}", "--gitops-repo", url,
                                          "--allow-older"], cwd=work, env={"GITHUB_TOKEN": secret})
        assert code == 1 and "authentication failed" in err
        assert not any(a for a in srv.seen_auth), srv.seen_auth  # no Authorization header at all
        code, _, err, _, _ = run_bounded(["bump", "hello", "--env", "dev", "--image",
                                          f"ghcr.io/acme/functions/hello@{DIGEST}", "--gitops-repo", url,
                                          "--allow-older"], cwd=work, env={"GITOPS_TOKEN": secret})
        assert code == 0, err  # the explicitly configured token is used for this remote


def test_the_auth_header_is_scoped_to_the_exact_remote():
    from fnops.delivery.gitops import Git

    g = Git("/tmp", "tok", "https://user:pw@git.example.com/acme/gitops.git")
    keys = {v for k, v in g.env.items() if k.startswith("GIT_CONFIG_KEY_")}
    assert "http.https://git.example.com/acme/gitops.git.extraHeader" in keys and "http.extraHeader" not in keys
    for url in ("/srv/repo.git", "file:///srv/repo.git", "ssh://git@example.com/x.git", None):
        assert not any(v == "tok" or "Basic" in v for v in Git("/tmp", "tok", url).env.values())
