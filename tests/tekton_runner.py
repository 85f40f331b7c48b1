"""A Tekton Task run the way Tekton's controller and entrypoint run it, for tests.

Ported from tektoncd/pipeline v1.15 (read, not copied):

- Substitution (pkg/reconciler/taskrun/resources/apply.go, pkg/substitution): `$(params.x)`,
  `$(params["x"])`, `$(params['x'])` with the Task's defaults under the run's values;
  `$(workspaces.x.path)` ("" when an optional workspace is unbound) and
  `$(workspaces.x.bound)`; `$(results.x.path)`;
  `$(context.taskRun.name)`, `$(context.task.name)`. They are replaced literally, in a step's
  script, command, args, workingDir, env values and env `valueFrom.secretKeyRef` name/key
  (pkg/container/container_replacements.go). A variable Tekton does not know stays as written.
- Scripts (pkg/pod/script.go): without a `#!` line the script runs under
  "#!/bin/sh\\nset -e\\n"; it is written to a file of its own and executed directly.
- Steps run in order, each in its own process with its own environment (the image's
  environment, then the step's `env`); the first failing step ends the run, unless its
  `onError` is `continue` (pkg/entrypoint).
- Results are the files under the results directory after the steps; what does not fit
  the termination message (4096 bytes for all results) fails the run, as on a cluster
  without results-from sidecar-logs.

The host stands in for the step's image: its PATH must hold what the image holds (here
fnops, git, buildah). A workspace is mounted at its directory on the host and the results
directory is a temporary one, so `$(workspaces.x.path)` and `$(results.x.path)` name host
paths where a pod has /workspace/<name> and /tekton/results/<name>: a step that reaches
them through the variables, as Tekton asks, sees no difference.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

SCRIPT_PREAMBLE = "#!/bin/sh\nset -e\n"
TERMINATION_MESSAGE_LIMIT = 4096


class TaskRunFailed(Exception):
    pass


@dataclass
class StepResult:
    name: str
    returncode: int
    stdout: str
    stderr: str
    env: dict = field(repr=False)


@dataclass
class TaskRunResult:
    steps: list[StepResult]
    results: dict[str, str]
    succeeded: bool

    @property
    def log(self) -> str:
        return "".join(s.stdout + s.stderr for s in self.steps)


def param_values(spec: dict, given: dict[str, str]) -> dict[str, str]:
    """The Task's (or Pipeline's) params: defaults, then the run's values; a param without
    a default that the run leaves out is the controller's refusal."""
    declared = {p["name"]: p for p in spec.get("params") or []}
    unknown = set(given) - set(declared)
    if unknown:
        raise TaskRunFailed(f"params not declared by the task: {sorted(unknown)}")
    out = {}
    for name, p in declared.items():
        if name in given:
            out[name] = given[name]
        elif "default" in p:
            out[name] = p["default"]
        else:
            raise TaskRunFailed(f"missing parameter {name!r} (it has no default)")
    return out


def replacements(spec: dict, params: dict[str, str], workspaces: dict[str, str | None],
                 results_dir: str, run_name: str, task_name: str) -> dict[str, str]:
    rep = {}
    for k, v in params.items():
        for key in (f"params.{k}", f'params["{k}"]', f"params['{k}']"):
            rep[key] = str(v)
    for w in spec.get("workspaces") or []:
        name = w["name"]
        path = workspaces.get(name)
        if path is None and not w.get("optional"):
            raise TaskRunFailed(f"workspace {name!r} is not bound and not optional")
        rep[f"workspaces.{name}.path"] = path if path is not None else ""
        rep[f"workspaces.{name}.bound"] = "true" if path is not None else "false"
    for r in spec.get("results") or []:
        rep[f"results.{r['name']}.path"] = f"{results_dir}/{r['name']}"
    rep["context.taskRun.name"] = run_name
    rep["context.task.name"] = task_name
    return rep


def substitute(text: str, rep: dict[str, str]) -> str:
    """substitution.ApplyReplacements: every `$(key)` replaced, literally."""
    for k, v in rep.items():
        text = text.replace(f"$({k})", v)
    return text


def run_task(task: dict, *, params: dict[str, str], workspaces: dict[str, str | None], image_env: dict[str, str],
             secrets: dict[str, dict[str, str]] | None = None, run_name: str = "fnops-ship-run",
             timeout: float = 900) -> TaskRunResult:
    """Run `task` (a Task object) with `workspaces` (name -> host directory, None when an
    optional one is left unbound) and `secrets` (Secret name -> data) that env valueFrom reads."""
    spec = task["spec"]
    values = param_values(spec, params)
    tekton = tempfile.mkdtemp(prefix="tekton-")  # the pod's /tekton: results, scripts
    results_dir, scripts_dir = os.path.join(tekton, "results"), os.path.join(tekton, "scripts")
    os.makedirs(results_dir)
    os.makedirs(scripts_dir)
    try:
        rep = replacements(spec, values, workspaces, results_dir, run_name, task["metadata"]["name"])
        steps: list[StepResult] = []
        succeeded = True
        for i, step in enumerate(spec["steps"]):
            env = dict(image_env)
            for e in step.get("env") or []:
                if "value" in e or "valueFrom" not in e:
                    env[e["name"]] = substitute(e.get("value", ""), rep)
                    continue
                ref = e["valueFrom"]["secretKeyRef"]
                name, key = substitute(ref["name"], rep), substitute(ref["key"], rep)
                data = (secrets or {}).get(name)
                if data is None or key not in data:
                    if ref.get("optional"):
                        continue
                    raise TaskRunFailed(f"step {step['name']}: secret {name!r} key {key!r} not found "
                                        "(the pod cannot start: CreateContainerConfigError)")
                env[e["name"]] = data[key]
            cwd = substitute(step.get("workingDir") or "/", rep)
            if "script" in step:
                script = substitute(step["script"], rep)
                if not script.startswith("#!"):
                    script = SCRIPT_PREAMBLE + script
                fd, path = tempfile.mkstemp(prefix=f"script-{i}-", dir=scripts_dir)
                with os.fdopen(fd, "w") as f:
                    f.write(script)
                os.chmod(path, 0o700)
                argv = [path] + [substitute(a, rep) for a in step.get("args") or []]
            else:
                argv = [substitute(a, rep) for a in (step.get("command") or []) + (step.get("args") or [])]
            try:
                p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
            finally:
                if "script" in step:
                    os.unlink(path)
            steps.append(StepResult(step["name"], p.returncode, p.stdout, p.stderr, env))
            if p.returncode != 0 and step.get("onError") != "continue":
                succeeded = False
                break
        results = {}
        for r in spec.get("results") or []:
            f = os.path.join(results_dir, r["name"])
            if os.path.exists(f):
                with open(f) as fh:
                    results[r["name"]] = fh.read()
        size = len(json.dumps([{"key": k, "value": v, "type": 1} for k, v in results.items()]))
        if size > TERMINATION_MESSAGE_LIMIT:
            raise TaskRunFailed(f"results take {size} bytes of the {TERMINATION_MESSAGE_LIMIT}-byte termination message")
    finally:
        shutil.rmtree(tekton, ignore_errors=True)
    return TaskRunResult(steps, results, succeeded)


_TASK_RESULT = re.compile(r"\$\(tasks\.([a-z0-9-]+)\.results\.([A-Za-z0-9_.-]+)\)")


def pipeline_task_params(pipeline: dict, task_name: str, pipeline_params: dict[str, str],
                         task_results: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """A Pipeline task's params with `$(params.x)` (the run's, over the Pipeline's defaults)
    and `$(tasks.t.results.r)` substituted, as the PipelineRun reconciler does."""
    values = param_values(pipeline["spec"], pipeline_params)
    rep = {f"params.{k}": v for k, v in values.items()}
    task = next(t for t in pipeline["spec"]["tasks"] if t["name"] == task_name)
    out = {}
    for p in task.get("params") or []:
        v = substitute(str(p["value"]), rep)
        out[p["name"]] = _TASK_RESULT.sub(lambda m: (task_results or {})[m.group(1)][m.group(2)], v)
    return out


def pipeline_results(pipeline: dict, task_results: dict[str, dict[str, str]]) -> dict[str, str]:
    return {r["name"]: _TASK_RESULT.sub(lambda m: task_results[m.group(1)][m.group(2)], r["value"])
            for r in pipeline["spec"].get("results") or []}
