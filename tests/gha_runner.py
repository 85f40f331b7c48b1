"""A composite action run the way the GitHub Actions runner runs it, for tests.

Ported from actions/runner (the review, ../shared/reference/actions-review.md, quotes each
part; the snapshot read was actions/runner 258d6c8, 2026-08):

- `run:` steps: `bash --noprofile --norc -e -o pipefail <file>` (Handlers/ScriptHandlerHelpers.cs),
  inputs and `env:` evaluated into the environment, GITHUB_OUTPUT / GITHUB_ENV / GITHUB_PATH /
  GITHUB_STATE / GITHUB_STEP_SUMMARY files, GITHUB_ACTION_PATH, RUNNER_TEMP.
- Output lines: each stream is split as .NET's StreamReader.ReadLine splits (\\r, \\n, \\r\\n;
  Runner.Sdk/ProcessInvoker.cs). The two streams are read into separate queues and each batch
  hands over every stderr line before the stdout lines (ProcessInvoker.ProcessOutput), so
  the order *between* streams is not the order they were written in: `Run(order=...)` picks
  stderr-first (as one batch does) or stdout-first (as a later batch can), and tests that
  care run both.
- Workflow commands: a line containing `::` or `##[` goes to ActionCommandManager.TryProcessCommand
  (Handlers/OutputManager.cs): ActionCommand.TryParseV2 (`::cmd k=v,k=v::data` after
  TrimStart()) then TryParse (legacy `##[cmd k=v;k=v]data` found *anywhere* in the line),
  command names case-insensitive; `stop-commands` with its token registered as the resume
  command (`::token::` or `##[token]`), the token masked when longer than 6 characters; while
  stopped every other command is plain text. Commands ported: add-mask, set-output (still
  processed), save-state, set-env and add-path (refused: ACTIONS_ALLOW_UNSECURE_COMMANDS),
  error / warning / notice (annotations), debug, group / endgroup, echo, add-matcher /
  remove-matcher (recorded).
- File commands: Runner.Worker/FileCommandManager.cs EnvFileKeyValuePairs (`NAME=VALUE` and
  `NAME<<DELIM` … a line equal to DELIM).
- Expressions (`${{ }}` in `if:`, `env:`, `with:` and output values): literals, context
  paths (names may hold `-`), `[ ]`, `!`, comparisons (strings case-insensitive), `&&`/`||`
  (returning an operand), contains / startsWith / endsWith / format / join / toJSON / fromJSON
  and the status functions.

`uses:` steps cannot run here: the test passes `uses={"owner/name": stub}`; a stub gets the
step's evaluated `with:` and env and returns its outputs. An action that a step runs whose
stub is missing fails the run (nothing is silently skipped).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass, field

import yaml

# ---------------------------------------------------------------------------------------
# workflow commands (ActionCommand.cs, ActionCommandManager.cs)

COMMANDS = {"set-env", "set-output", "save-state", "add-mask", "add-path", "add-matcher", "remove-matcher",
            "debug", "warning", "error", "notice", "group", "endgroup", "echo"}
STOP = "stop-commands"


def _unescape(text: str, pairs) -> str:
    for token, replacement in pairs:
        text = text.replace(replacement, token)
    return text


_ESCAPE = [(";", "%3B"), ("\r", "%0D"), ("\n", "%0A"), ("]", "%5D"), ("%", "%25")]
_ESCAPE_DATA = [("\r", "%0D"), ("\n", "%0A"), ("%", "%25")]
_ESCAPE_PROPERTY = [("\r", "%0D"), ("\n", "%0A"), (":", "%3A"), (",", "%2C"), ("%", "%25")]


def parse_v2(message: str, registered: set[str]):
    """ActionCommand.TryParseV2: `::name k=v,…::data`, after trimming leading whitespace."""
    if not message:
        return None
    message = message.lstrip()  # C# TrimStart(): every Unicode white space
    if not message.startswith("::"):
        return None
    end = message.find("::", 2)
    if end < 0:
        return None
    info = message[2:end]
    space = info.find(" ")
    name = info if space < 0 else info[:space]
    if name.lower() not in registered:
        return None
    props = {}
    if space > 0:
        for prop in [p for p in info[space + 1:].strip().split(",") if p]:
            pair = [x for x in prop.split("=", 1) if x]
            if len(pair) == 2:
                props[pair[0].lower()] = _unescape(pair[1], _ESCAPE_PROPERTY)
    return name.lower(), props, _unescape(message[end + 2:], _ESCAPE_DATA)


def parse_legacy(message: str, registered: set[str]):
    """ActionCommand.TryParse: `##[name k=v;…]data`, the prefix found anywhere in the line."""
    if not message:
        return None
    start = message.find("##[")
    if start < 0:
        return None
    rb = message.find("]", start)
    if rb < 0:
        return None
    info = message[start + 3:rb]
    space = info.find(" ")
    name = info if space < 0 else info[:space]
    if name.lower() not in registered:
        return None
    props = {}
    if space > 0:
        for prop in [p for p in info[space + 1:].split(";") if p]:
            pair = [x for x in prop.split("=", 1) if x]
            if len(pair) == 2:
                props[pair[0].lower()] = _unescape(pair[1], _ESCAPE)
    return name.lower(), props, _unescape(message[rb + 1:], _ESCAPE)


def split_lines(data: bytes) -> list[str]:
    """StreamReader.ReadLine: a line ends at \\n, \\r or \\r\\n; a last line without one counts."""
    text = data.decode("utf-8", errors="replace")
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


@dataclass
class Annotation:
    kind: str  # error | warning | notice
    message: str
    properties: dict


class Commands:
    """One step's ActionCommandManager (its stop state is shared by stdout and stderr)."""

    def __init__(self, masks: list[str]):
        self.registered = set(COMMANDS) | {STOP}
        self.stopped_token: str | None = None
        self.masks = masks
        self.annotations: list[Annotation] = []
        self.outputs: dict[str, str] = {}
        self.state: dict[str, str] = {}
        self.log: list[str] = []  # what the log shows (masked)
        self.groups: list[str] = []
        self.errors: list[str] = []  # commands the runner refused (the step fails)
        self.processed: list[tuple] = []  # every command run, (name, properties, data)

    def _show(self, line: str) -> None:
        for secret in sorted(self.masks, key=len, reverse=True):
            if secret:
                line = line.replace(secret, "***")
        self.log.append(line)

    def feed(self, line: str) -> None:
        if line and ("##[" in line or "::" in line) and self._try(line):
            return
        self._show(line)

    def _try(self, line: str) -> bool:
        cmd = parse_v2(line, self.registered) or parse_legacy(line, self.registered)
        if cmd is None:
            return False
        name, props, data = cmd
        if self.stopped_token is not None:
            if name == self.stopped_token.lower():
                self._show(line)
                self.registered.discard(self.stopped_token.lower())
                self.stopped_token = None
                return True
            return False  # shown as text
        if name == STOP:
            if not data or data.lower() in self.registered or data.lower() == "pause-logging":
                self.errors.append(f"invalid stop-commands token {data!r}")
                return True
            self.stopped_token = data
            self.registered.add(data.lower())
            if len(data) > 6:
                self.masks.append(data)
            self._show(line)
            return True
        self.processed.append((name, props, data))
        if name == "add-mask":
            if data.strip():
                self.masks.append(data)
                self.masks.extend(x.strip() for x in re.split(r"[\r\n]", data) if x.strip())
                self._show("::add-mask::***")
        elif name == "set-output":
            self._show(line)
            if not props.get("name"):
                self.errors.append("set-output without name")
            else:
                self.outputs[props["name"]] = data
        elif name == "save-state":
            self._show(line)
            self.state[props.get("name", "")] = data
        elif name in ("set-env", "add-path"):
            self._show(line)
            self.errors.append(f"The `{name}` command is disabled.")
        elif name in ("error", "warning", "notice"):
            self.annotations.append(Annotation(name, data, props))
        elif name == "group":
            self.groups.append(data)
            self._show(f"[group] {data}")
        elif name == "endgroup":
            self._show("[endgroup]")
        elif name == "debug":
            pass  # shown only with step debug logging
        else:  # echo, add-matcher, remove-matcher: recorded
            self._show(line)
        return True


# ---------------------------------------------------------------------------------------
# file commands (FileCommandManager.cs)

def read_key_values(path: str) -> list[tuple[str, str]]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    out, i = [], 0

    def readline():
        nonlocal i
        if i >= len(text):
            return None, None
        lf = text.find("\n", i)
        if lf < 0:
            line, i = text[i:], len(text)
            return line, None
        line, i = text[i:lf], lf + 1
        return line, "\n"

    line, _ = readline()
    while line is not None:
        if line:
            eq, hd = line.find("="), line.find("<<")
            if eq >= 0 and (hd < 0 or eq < hd):
                key, value = line.split("=", 1)
            elif hd >= 0 and (eq < 0 or hd < eq):
                key, delimiter = line.split("<<", 1)
                if not key or not delimiter:
                    raise ValueError(f"Invalid format '{line}'")
                start = end = i
                tmp, nl = readline()
                while tmp != delimiter:
                    if tmp is None:
                        raise ValueError(f"Invalid value. Matching delimiter not found '{delimiter}'")
                    if nl is None:
                        raise ValueError("Invalid value. EOF marker missing new line.")
                    end = i - len(nl)
                    tmp, nl = readline()
                value = text[start:end] if end > start else ""
            else:
                raise ValueError(f"Invalid format '{line}'")
            out.append((key, value))
        line, _ = readline()
    return out


# ---------------------------------------------------------------------------------------
# expressions

_TOKEN = re.compile(r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\].,*])"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))")


def _tokens(expr: str):
    pos, out = 0, []
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot parse expression at {expr[pos:]!r}")
        pos = m.end()
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
    return out


def _truthy(v) -> bool:
    return not (v is None or v is False or v == 0 or v == "" or (isinstance(v, float) and v != v))


def _num(v):
    if v is None:
        return 0
    if isinstance(v, bool):
        return 1 if v else 0
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            return float(v.strip()) if v.strip() else 0
        except ValueError:
            return float("nan")
    return float("nan")


def _eq(a, b) -> bool:
    if type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                               and not isinstance(a, bool) and not isinstance(b, bool)):
        if isinstance(a, str):
            return a.lower() == b.lower()
        return a == b
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return _num(a) == _num(b)


def to_string(v) -> str:
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v, indent=2)
    return str(v)


class Expr:
    def __init__(self, contexts: dict, status: str = "success"):
        self.ctx, self.status = contexts, status

    def evaluate(self, expr: str):
        self.toks, self.i = _tokens(expr), 0
        v = self._or()
        if self.i != len(self.toks):
            raise ValueError(f"unexpected {self.toks[self.i]} in {expr!r}")
        return v

    def _peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def _take(self, value=None):
        tok = self._peek()
        if value is not None and tok[1] != value:
            raise ValueError(f"expected {value}, got {tok}")
        self.i += 1
        return tok

    def _or(self):
        v = self._and()
        while self._peek()[1] == "||":
            self._take()
            r = self._and()
            v = v if _truthy(v) else r
        return v

    def _and(self):
        v = self._cmp()
        while self._peek()[1] == "&&":
            self._take()
            r = self._cmp()
            v = r if _truthy(v) else v
        return v

    def _cmp(self):
        v = self._unary()
        while self._peek()[1] in ("==", "!=", "<", ">", "<=", ">="):
            op = self._take()[1]
            r = self._unary()
            if op == "==":
                v = _eq(v, r)
            elif op == "!=":
                v = not _eq(v, r)
            else:
                a, b = (v.lower(), r.lower()) if isinstance(v, str) and isinstance(r, str) else (_num(v), _num(r))
                v = {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return v

    def _unary(self):
        if self._peek()[1] == "!":
            self._take()
            return not _truthy(self._unary())
        return self._postfix()

    def _postfix(self):
        kind, val = self._take()
        if val == "(":
            v = self._or()
            self._take(")")
        elif kind == "num":
            v = float(val) if "." in val else int(val)
        elif kind == "str":
            v = val[1:-1].replace("''", "'")
        elif kind == "name" and self._peek()[1] == "(":
            self._take("(")
            args = []
            while self._peek()[1] != ")":
                args.append(self._or())
                if self._peek()[1] == ",":
                    self._take()
            self._take(")")
            v = self._call(val.lower(), args)
        elif kind == "name":
            low = val.lower()
            v = {"true": True, "false": False, "null": None}.get(low, self.ctx.get(low)) \
                if low in ("true", "false", "null") or low in self.ctx else None
        else:
            raise ValueError(f"unexpected {val!r}")
        while self._peek()[1] in (".", "["):
            if self._take()[1] == ".":
                key = self._take()[1]
            else:
                key = self._or()
                self._take("]")
            v = self._index(v, key)
        return v

    @staticmethod
    def _index(v, key):
        if isinstance(v, dict):
            for k, x in v.items():
                if str(k).lower() == str(key).lower():
                    return x
            return None
        if isinstance(v, list) and isinstance(key, (int, float)):
            return v[int(key)] if 0 <= int(key) < len(v) else None
        return None

    def _call(self, name, args):
        if name in ("success", "failure", "always", "cancelled"):
            return {"success": self.status == "success", "failure": self.status == "failure",
                    "always": True, "cancelled": False}[name]
        if name == "contains":
            hay, needle = args
            if isinstance(hay, list):
                return any(_eq(x, needle) for x in hay)
            return to_string(needle).lower() in to_string(hay).lower()
        if name == "startswith":
            return to_string(args[0]).lower().startswith(to_string(args[1]).lower())
        if name == "endswith":
            return to_string(args[0]).lower().endswith(to_string(args[1]).lower())
        if name == "format":
            text = to_string(args[0])
            for n, a in enumerate(args[1:]):
                text = text.replace("{" + str(n) + "}", to_string(a))
            return text
        if name == "join":
            sep = to_string(args[1]) if len(args) > 1 else ","
            return sep.join(to_string(x) for x in args[0]) if isinstance(args[0], list) else to_string(args[0])
        if name == "tojson":
            return json.dumps(args[0], indent=2)
        if name == "fromjson":
            return json.loads(to_string(args[0]))
        raise ValueError(f"function {name} is not ported")


_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def render(value, contexts, status="success"):
    """A YAML value with `${{ }}`: the whole value one expression keeps its type; else text."""
    if not isinstance(value, str):
        return value
    m = _TEMPLATE.fullmatch(value.strip())
    if m:
        return Expr(contexts, status).evaluate(m.group(1))
    return _TEMPLATE.sub(lambda mm: to_string(Expr(contexts, status).evaluate(mm.group(1))), value)


def condition(text, contexts, status) -> bool:
    """A step's `if:` (default success()); without a status function it is `success() && (…)`."""
    if text is None:
        return status == "success"
    text = str(text).strip()
    m = _TEMPLATE.fullmatch(text)
    text = m.group(1) if m else text
    if not re.search(r"\b(success|failure|always|cancelled)\s*\(", text):
        text = f"success() && ({text})"
    return _truthy(Expr(contexts, status).evaluate(text))


# ---------------------------------------------------------------------------------------
# the composite run

@dataclass
class Step:
    id: str | None
    name: str
    ran: bool
    outcome: str  # success | failure | skipped
    outputs: dict = field(default_factory=dict)
    annotations: list = field(default_factory=list)
    log: list = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    env: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    code: int | None = None


@dataclass
class Result:
    steps: list
    outputs: dict
    env: dict  # what GITHUB_ENV left for the job's later steps
    path: list  # what GITHUB_PATH added
    summary: str
    masks: list

    @property
    def ok(self) -> bool:
        return all(s.outcome != "failure" for s in self.steps)

    def step(self, id_):
        return next(s for s in self.steps if s.id == id_)

    @property
    def annotations(self):
        return [a for s in self.steps for a in s.annotations]

    @property
    def log(self):
        return [line for s in self.steps for line in s.log]


def run_action(action_yml: str, inputs: dict, *, workspace: str, temp: str, env: dict | None = None,
               github: dict | None = None, uses: dict | None = None, order: str = "stderr-first",
               secrets: tuple = (), timeout: int = 600) -> Result:
    """Run every step of the composite action `action_yml` as the runner would."""
    with open(action_yml) as f:
        action = yaml.safe_load(f)
    action_path = os.path.dirname(os.path.abspath(action_yml))
    os.makedirs(temp, exist_ok=True)
    github = {"token": "", "server_url": "https://github.com", "repository": "acme/functions",
              "action_path": action_path, "workspace": workspace, **(github or {})}
    runner = {"temp": temp, "os": "Linux", "arch": "X64"}
    base_env = dict(env if env is not None else os.environ)
    contexts = {"github": github, "runner": runner, "env": base_env, "steps": {}, "inputs": {}}
    values = {}
    for name, spec in (action.get("inputs") or {}).items():
        default = (spec or {}).get("default", "")
        values[name] = to_string(render(default, contexts)) if isinstance(default, str) else to_string(default)
    for k, v in inputs.items():
        values[k.replace("_", "-")] = v
    contexts["inputs"] = values
    masks = [s for s in (*secrets, github.get("token")) if s]
    job_env: dict = {}
    added_path: list = []
    summary = []
    status = "success"
    steps = []
    for n, spec in enumerate(action["runs"]["steps"]):
        sid = spec.get("id")
        name = spec.get("name") or spec.get("uses") or spec.get("run", "").splitlines()[0]
        contexts["env"] = {**base_env, **job_env}
        if not condition(spec.get("if"), contexts, status):
            steps.append(Step(sid, name, False, "skipped"))
            if sid:
                contexts["steps"][sid] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
            continue
        step_env = {k: to_string(render(v, contexts, status)) for k, v in (spec.get("env") or {}).items()}
        files = {var: os.path.join(temp, f"_runner_file_commands/{var.lower()}_{uuid.uuid4()}")
                 for var in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STATE", "GITHUB_STEP_SUMMARY")}
        os.makedirs(os.path.join(temp, "_runner_file_commands"), exist_ok=True)
        for path in files.values():
            open(path, "w").close()
        proc_env = {**base_env, **job_env, **step_env, **files, "GITHUB_ACTIONS": "true", "CI": "true",
                    "GITHUB_ACTION_PATH": action_path, "RUNNER_TEMP": temp, "GITHUB_WORKSPACE": workspace}
        if added_path:
            proc_env["PATH"] = os.pathsep.join([*reversed(added_path), proc_env.get("PATH", "")])
        cmds = Commands(masks)
        if "run" in spec:
            script = os.path.join(temp, f"step-{n}-{uuid.uuid4()}.sh")
            with open(script, "w") as f:
                f.write(spec["run"])
            cwd = os.path.join(workspace, to_string(render(spec.get("working-directory", "."), contexts, status)))
            p = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", script], cwd=cwd,
                               env=proc_env, capture_output=True, timeout=timeout)
            code, out, err = p.returncode, p.stdout, p.stderr
        else:
            ref = spec["uses"].split("@", 1)[0]
            stub = (uses or {}).get(ref)
            if stub is None:
                raise AssertionError(f"step {name}: no stub for {ref} (pass uses={{'{ref}': …}})")
            with_ = {k: to_string(render(v, contexts, status)) for k, v in (spec.get("with") or {}).items()}
            got = stub(with_, proc_env)
            code, out, err = got.get("code", 0), got.get("stdout", b""), got.get("stderr", b"")
            with open(files["GITHUB_OUTPUT"], "a") as f:
                for k, v in (got.get("outputs") or {}).items():
                    delimiter = f"ghadelimiter_{uuid.uuid4()}"
                    f.write(f"{k}<<{delimiter}\n{v}\n{delimiter}\n")
        streams = [split_lines(err), split_lines(out)]
        if order == "stdout-first":
            streams.reverse()
        for lines in streams:
            for line in lines:
                cmds.feed(line)
        outputs = dict(cmds.outputs)
        outputs.update(read_key_values(files["GITHUB_OUTPUT"]))
        for k, v in read_key_values(files["GITHUB_ENV"]):
            job_env[k] = v
        if os.path.exists(files["GITHUB_PATH"]):
            with open(files["GITHUB_PATH"]) as f:
                added_path += [line.rstrip("\n") for line in f if line.strip()]
        with open(files["GITHUB_STEP_SUMMARY"]) as f:
            summary.append(f.read())
        outcome = "success" if code == 0 and not cmds.errors else "failure"
        if outcome == "failure":
            status = "failure"
        step = Step(sid, name, True, outcome, outputs, cmds.annotations, cmds.log,
                    out.decode(errors="replace"), err.decode(errors="replace"), proc_env, cmds.errors, code)
        steps.append(step)
        if sid:
            contexts["steps"][sid] = {"outputs": outputs, "outcome": outcome, "conclusion": outcome}
    contexts["env"] = {**base_env, **job_env}
    outs = {k: to_string(render((spec or {}).get("value", ""), contexts, status))
            for k, spec in (action.get("outputs") or {}).items()}
    return Result(steps, outs, job_env, added_path, "".join(summary), masks)


# ---------------------------------------------------------------------------------------
# stand-ins for the `uses:` steps of fnops' actions

GITHUB_SCRIPT_NODE = r"""
const fs = require('fs');
const crypto = require('crypto');
const core = {  // @actions/core as github-script hands it over: commands and file commands
  setSecret: (v) => process.stdout.write(`::add-mask::${v}\n`),
  info: (v) => process.stdout.write(`${v}\n`),
  setOutput: (k, v) => {
    const d = `ghadelimiter_${crypto.randomUUID()}`;
    fs.appendFileSync(process.env.GITHUB_OUTPUT, `${k}<<${d}\n${v}\n${d}\n`);
  },
};
const AsyncFunction = Object.getPrototypeOf(async () => null).constructor;
new AsyncFunction('core', 'require', fs.readFileSync(process.argv[2], 'utf8'))(core, require)
  .catch((e) => { process.stdout.write(`::error::${e.message}\n`); process.exit(1); });
"""

# `python -m venv` and `python -m pip` as setup-python's interpreter would run them, except
# that pip is recorded (tests reach no index) and the venv's `fnops` is the one under test.
FAKE_PYTHON = """#!/bin/bash
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && ln -s {fnops} "$3/bin/fnops"; exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then shift 2; printf '%s\\n' "$*" >> {log}; exit 0; fi
exec {python} "$@"
"""


def fnops_stubs(tmp, calls: list | None = None, buildx_name: str = "builder-fnops-test"):
    """Stubs for setup-python (a recorded-pip interpreter), setup-buildx-action (a builder
    name) and github-script (its script run by node, with a JS action's ACTIONS_* env)."""
    import shutil
    import sys

    calls = [] if calls is None else calls
    os.makedirs(tmp, exist_ok=True)
    log = os.path.join(tmp, "pip-calls.log")
    py = os.path.join(tmp, "setup-python", "python3")
    os.makedirs(os.path.dirname(py), exist_ok=True)
    with open(py, "w") as f:
        f.write(FAKE_PYTHON.format(fnops=shutil.which("fnops"), log=log, python=sys.executable))
    os.chmod(py, 0o755)

    def setup_python(with_, env):
        calls.append(("actions/setup-python", with_))
        return {"outputs": {"python-path": py, "python-version": "3.12.99"}}

    def setup_buildx(with_, env):
        calls.append(("docker/setup-buildx-action", with_))
        return {"outputs": {"name": buildx_name, "driver": with_.get("driver", "")}}

    def github_script(with_, env):
        calls.append(("actions/github-script", with_))
        node = shutil.which("node")
        if node is None:
            raise AssertionError("node is not installed: the github-script step cannot be run")
        src = os.path.join(tmp, f"script-{uuid.uuid4()}.js")
        runner_js = os.path.join(tmp, "github-script.js")
        with open(src, "w") as f:
            f.write(with_["script"])
        with open(runner_js, "w") as f:
            f.write(GITHUB_SCRIPT_NODE)
        js_env = {**env, "ACTIONS_RUNTIME_TOKEN": RUNTIME_TOKEN, "ACTIONS_RESULTS_URL": "https://results.invalid/",
                  "ACTIONS_CACHE_URL": "https://cache.invalid/", "ACTIONS_CACHE_SERVICE_V2": "True"}
        p = subprocess.run([node, runner_js, src], env=js_env, capture_output=True)
        return {"code": p.returncode, "stdout": p.stdout, "stderr": p.stderr}

    return {"actions/setup-python": setup_python, "docker/setup-buildx-action": setup_buildx,
            "actions/github-script": github_script}, log


RUNTIME_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.runtime-token-for-tests.sig"
