"""`fnops new`: a function folder that validates as written."""

from __future__ import annotations

import os
import shutil
import tempfile

from ..errors import UsageError
from .function import MAX_NAME
from .units import DNS1035

FUNCTION_YAML = """\
# fnops function spec (v1). Only `runtime` is required; see DESIGN.md for every key.
runtime: {runtime}
{handler_line}http: {{visibility: public}}
scale: {{min: 0, max: 10, metric: concurrency, target: 100}}
resources: {{cpu: 100m, memory: 128Mi}}
# environments:
#   prod: {{scale: {{min: 1}}, rollback: pr}}
"""

HANDLER = '''\
def handle(event, context):
    """Called once per request or CloudEvent.

    `event` is the parsed JSON body (or text); return a dict for a JSON reply or a string.
    """
    name = (event or {}).get("name", "world") if isinstance(event, dict) else "world"
    return {"message": f"hello, {name}"}
'''

DOCKERFILE = """\
# runtime: dockerfile — fnops builds this file as it is. Replace the CMD with your server;
# it must listen on $PORT (Knative sets it; 8080 by default) and run as a non-root user.
FROM python:3.12-slim
WORKDIR /app
COPY . .
USER 65532
ENV PORT=8080
CMD ["sh", "-c", "exec python -m http.server \"$PORT\""]
"""


def scaffold(name: str, runtime: str, directory: str) -> str:
    if not DNS1035.fullmatch(name) or len(name) > MAX_NAME:
        raise UsageError(f"'{name}' is not a valid function name: lowercase letters, digits and '-', "
                         f"starting with a letter, at most {MAX_NAME} characters")
    folder = os.path.join(directory, name)
    if os.path.exists(folder):
        raise UsageError(f"{folder} already exists; pick another name or remove it")
    os.makedirs(directory, exist_ok=True)
    python = runtime.startswith("python")
    files = {
        "function.yaml": FUNCTION_YAML.format(
            runtime=runtime,
            handler_line="handler: handler:handle\n" if python else
            (f"image: registry.example.com/functions/{name}   # the repository releases pin\n" if runtime == "image" else ""),
        ),
    }
    if python:
        files["handler.py"] = HANDLER
        files["requirements.txt"] = "# one requirement per line\n"
    elif runtime == "dockerfile":
        files["Dockerfile"] = DOCKERFILE
    # Build beside the target and rename: a failure leaves nothing half-written.
    tmp = tempfile.mkdtemp(prefix=f".{name}-", dir=directory)
    try:
        for rel, text in files.items():
            with open(os.path.join(tmp, rel), "w", encoding="utf-8") as f:
                f.write(text)
        os.makedirs(os.path.join(tmp, "releases"))
        with open(os.path.join(tmp, "releases", ".gitkeep"), "w"):
            pass
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
