"""GitHub Actions surfaces: annotations, step outputs and the step summary."""

from __future__ import annotations

import os

import click

from ..errors import SpecError
from ..escape import workflow_data, workflow_property


MAX_ANNOTATIONS = 10  # per type and step, in GitHub's UI


def annotate(e) -> None:
    """GitHub Actions annotations for spec errors, so they show on the file and line."""
    if os.environ.get("GITHUB_ACTIONS") != "true" or not isinstance(e, SpecError):
        return
    # GitHub shows at most 10 error annotations per step: past that, the tenth says how many
    # more there are (every problem is in the log, one line each, above).
    shown = e.problems if len(e.problems) <= MAX_ANNOTATIONS else e.problems[:MAX_ANNOTATIONS - 1]
    for p in shown:
        click.echo(f"::error file={workflow_property(p.path)},line={p.line},col={p.col}::{workflow_data(p.message)}")
    if len(shown) < len(e.problems):
        click.echo(f"::error::{len(e.problems) - len(shown)} more problems (GitHub shows 10 annotations per step): "
                   "every one is in this step's log")


def warn(problem) -> None:
    """A warning (a Problem, or text) on stderr; in GitHub Actions an annotation as well, on
    the file and line when there is one."""
    if os.environ.get("GITHUB_ACTIONS") == "true":
        where = f" file={workflow_property(problem.path)},line={problem.line}" if hasattr(problem, "path") else ""
        # On stderr, where build output is fenced by stop-commands: the runner reads stdout and
        # stderr apart, so a command on stdout could be read while stderr's region is open.
        click.echo(f"::warning{where}::{workflow_data(getattr(problem, 'message', problem))}", err=True)
    click.echo(f"fnops: warning: {problem}", err=True)


def notice(text: str) -> None:
    """A line on stdout; in GitHub Actions a notice annotation instead."""
    if os.environ.get("GITHUB_ACTIONS") == "true":
        click.echo(f"::notice::{workflow_data(text)}")
    else:
        click.echo(text)


def write_outputs(**values):
    """Step outputs in $GITHUB_OUTPUT, in the heredoc form with a random delimiter (as
    actions/toolkit's `ghadelimiter_<uuid>`): the runner reads a value up to the first line
    that *equals* the delimiter, so no value can end early or forge another output."""
    import uuid

    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        for k, v in values.items():
            v = str(v)
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            while delimiter in v or delimiter in k:  # as the toolkit refuses; never in practice
                delimiter = f"ghadelimiter_{uuid.uuid4()}"
            f.write(f"{k}<<{delimiter}\n{v}\n{delimiter}\n")


def _test_cell(r) -> str:
    """How the function's `test:` went, for the step summary ('—' when it declares none)."""
    test = getattr(r, "test", None)
    return f"{test['status']} in {test['seconds']:.1f} s" if test else "—"


def write_step_summary(results, sha, env):
    """A Markdown table in $GITHUB_STEP_SUMMARY when running in GitHub Actions."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    lines = [f"### fnops ship → {env}", "", "| function | image | pushed | test |", "|---|---|---|---|"]
    lines += [f"| `{r.function}` | `{r.image}` | {'yes' if r.pushed else 'no (dry run)'} | {_test_cell(r)} |"
              for r in results]
    lines += ["", f"Pinned in `{sha}`." if sha else "Nothing pinned.", ""]
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(lines))
