"""GitHub Actions surfaces: annotations, step outputs and the step summary."""

from __future__ import annotations

import os

import click

from ..errors import SpecError
from ..escape import workflow_data, workflow_property


def annotate(e) -> None:
    """GitHub Actions annotations for spec errors, so they show on the file and line."""
    if os.environ.get("GITHUB_ACTIONS") != "true" or not isinstance(e, SpecError):
        return
    for p in e.problems:
        click.echo(f"::error file={workflow_property(p.path)},line={p.line},col={p.col}::{workflow_data(p.message)}")


def write_outputs(**values):
    """Step outputs in $GITHUB_OUTPUT (heredoc form: values may hold any character)."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        for k, v in values.items():
            f.write(f"{k}<<FNOPS_EOF\n{v}\nFNOPS_EOF\n")


def write_step_summary(results, sha, env):
    """A Markdown table in $GITHUB_STEP_SUMMARY when running in GitHub Actions."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    lines = [f"### fnops ship → {env}", "", "| function | image | pushed |", "|---|---|---|"]
    lines += [f"| `{r.function}` | `{r.image}` | {'yes' if r.pushed else 'no (dry run)'} |" for r in results]
    lines += ["", f"Pinned in `{sha}`." if sha else "Nothing pinned.", ""]
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(lines))
