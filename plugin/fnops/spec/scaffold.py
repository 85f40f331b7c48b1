"""`fnops new`: a function folder that validates as written."""

from __future__ import annotations

import os
import shutil
import tempfile

from ..errors import UsageError
from .function import MAX_NAME
from .units import DNS1035

FUNCTION_YAML = """\
# fnops function spec (v1). Only `runtime` is required; every key is in the fnops README,
# "function.yaml in one screen". `fnops validate` checks this file; `fnops run {name}` serves it.
# Every object is named after this folder ({name}): rename the folder to rename the function.
runtime: {runtime}
{handler_line}http: {{visibility: {visibility}}}
scale: {{min: 0, max: 10, metric: concurrency, target: 100}}
resources: {{cpu: 100m, memory: 128Mi}}
{triggers}# environments:                      # overlays, deep-merged over the above; `fnops run {name} --env dev`
#   dev: {{env: {{LOG_LEVEL: debug}}}}
#   prod: {{scale: {{min: 1}}, rollback: pr}}
"""

TRIGGERS = """\
triggers:                            # a Knative Trigger: events of this type from the broker reach handle()
  - event: {broker: default, filter: {type: com.example.order.created}}
"""

HANDLER = '''\
"""An HTTP function. `fnops run NAME` serves it; `fnops invoke NAME --data '{"name": "ada"}'` calls it."""


def handle(event, context):
    """Called once per request (or CloudEvent).

    event    the body: parsed JSON (application/json), str (text/*, forms), bytes
             (anything else), None when there is none. For a CloudEvent: its data.
    context  a dict: method ("POST"), path ("/orders/7"), query ("a=1"), params ({"a": "1"}),
             headers (lower-case names), cloudevent (None, or the event's attributes:
             id, source, type, time, subject, datacontenttype, extensions).

    Return what the reply is: a dict or list (JSON, 200), a str (text), bytes, None
    (204 No Content); (body, status) for another status, (body, status, headers) to set
    headers too, e.g. ({"error": "no name"}, 400). A dict with "specversion" is a
    CloudEvent reply. An exception is a 500 (its traceback goes to the log, not the caller).
    """
    name = event.get("name") if isinstance(event, dict) else context["params"].get("name")
    if name is not None and not isinstance(name, str):
        return {"error": "name must be a string"}, 400
    return {"message": f"hello, {name or 'world'}"}
'''

CLOUDEVENTS_HANDLER = '''\
"""A CloudEvents function: a Trigger delivers events of the type function.yaml filters on;
what handle() returns is a CloudEvent reply, which the broker routes on.

Try it: fnops run NAME, then
    fnops invoke NAME --cloudevent com.example.order.created --data '{"id": 7}'
"""

import datetime
import os


def handle(event, context):
    """Called once per CloudEvent (and per plain request: then context["cloudevent"] is None).

    event    the event's data: parsed JSON, str, bytes, or None.
    context  a dict: method, path, query, params, headers, and cloudevent, the attributes
             (specversion, id, source, type, time, subject, datacontenttype, extensions).

    A dict with "specversion" is a CloudEvent reply (sent in binary mode: its attributes as
    ce-* headers, its data as the body); `type` and `source` are required, `id` defaults to
    a new UUID. As any handler may, it can return (body, status) or (body, status, headers),
    and None to reply nothing (204 No Content); raise to fail (500: the broker retries).
    """
    ce = context["cloudevent"]
    if ce is None:
        return {"error": "send a CloudEvent (ce-* headers, or application/cloudevents+json)"}, 400
    order = event if isinstance(event, dict) else {}
    return {
        "specversion": "1.0",
        "type": "com.example.order.acknowledged",
        "source": f"/functions/{os.environ.get('K_SERVICE', 'local')}",  # Knative sets K_SERVICE
        "subject": str(order.get("id", "")),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": {"order": order.get("id"), "acknowledges": ce["id"]},
    }
'''

NODE_HANDLER = """\
// An HTTP function. `fnops run NAME` serves it; `fnops invoke NAME --data '{"name": "ada"}'` calls it.
'use strict';

/**
 * Called once per request (or CloudEvent); may be async.
 *
 * event    the body: parsed JSON (application/json), a string (text/*, forms), a Buffer
 *          (anything else), null when there is none. For a CloudEvent: its data.
 * context  method ("POST"), path ("/orders/7"), query ("a=1"), params ({a: "1"}), headers
 *          (lower-case names), cloudevent (null, or the event's attributes: id, source,
 *          type, time, subject, datacontenttype, extensions).
 *
 * Return what the reply is: an object or array (JSON, 200), a string (text), a Buffer,
 * null (204 No Content); context.reply(body, status[, headers]) for another status or
 * headers, e.g. context.reply({error: 'no name'}, 400). An object with "specversion" is a
 * CloudEvent reply. A throw is a 500 (its stack goes to the log, not the caller).
 */
exports.handle = async (event, context) => {
  const name = event !== null && typeof event === 'object' && !Buffer.isBuffer(event) ? event.name : context.params.name;
  if (name !== undefined && typeof name !== 'string') {
    return context.reply({ error: 'name must be a string' }, 400);
  }
  return { message: `hello, ${name || 'world'}` };
};
"""

NODE_CLOUDEVENTS_HANDLER = """\
// A CloudEvents function: a Trigger delivers events of the type function.yaml filters on;
// what handle() returns is a CloudEvent reply, which the broker routes on.
//
// Try it: fnops run NAME, then
//     fnops invoke NAME --cloudevent com.example.order.created --data '{"id": 7}'
'use strict';

/**
 * Called once per CloudEvent (and per plain request: then context.cloudevent is null).
 *
 * event    the event's data: parsed JSON, a string, a Buffer, or null.
 * context  method, path, query, params, headers, and cloudevent, the attributes
 *          (specversion, id, source, type, time, subject, datacontenttype, extensions).
 *
 * An object with "specversion" is a CloudEvent reply (sent in binary mode: its attributes as
 * ce-* headers, its data as the body); `type` and `source` are required, `id` defaults to a
 * new UUID. As any handler may, it can return context.reply(body, status[, headers]), and
 * null to reply nothing (204 No Content); throw to fail (500: the broker retries).
 */
exports.handle = async (event, context) => {
  const ce = context.cloudevent;
  if (ce === null) {
    return context.reply({ error: 'send a CloudEvent (ce-* headers, or application/cloudevents+json)' }, 400);
  }
  const order = event !== null && typeof event === 'object' && !Buffer.isBuffer(event) ? event : {};
  return {
    specversion: '1.0',
    type: 'com.example.order.acknowledged',
    source: `/functions/${process.env.K_SERVICE || 'local'}`, // Knative sets K_SERVICE
    subject: String(order.id ?? ''),
    time: new Date().toISOString(),
    data: { order: order.id ?? null, acknowledges: ce.id },
  };
};
"""

# `npm ci` needs the lockfile even without dependencies; both are what npm itself writes.
PACKAGE_JSON = """\
{{
  "name": "{name}",
  "version": "1.0.0",
  "private": true,
  "description": "fnops function {name}: handler.js exports handle(event, context)",
  "main": "handler.js",
  "dependencies": {{}}
}}
"""

PACKAGE_LOCK = """\
{{
  "name": "{name}",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {{
    "": {{
      "name": "{name}",
      "version": "1.0.0"
    }}
  }}
}}
"""

DOCKERFILE = """\
# runtime: dockerfile — fnops builds this file as it is. Replace server.py (or the CMD) with
# your own server: it must listen on $PORT (Knative sets it; 8080 by default) and run as a
# non-root user. `fnops run NAME` builds and serves it with buildah.
FROM python:3.12-slim
WORKDIR /app
COPY server.py .
USER 65532
ENV PORT=8080
CMD ["python", "/app/server.py"]
"""

DOCKERFILE_SERVER = '''\
"""A minimal HTTP server (standard library only): answers GET, POST, PUT, PATCH and DELETE
with JSON. Replace it with your own; keep listening on $PORT."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = json.dumps({"method": self.command, "path": self.path, "received": len(body)}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


if __name__ == "__main__":
    ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
'''


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def scaffold(name: str, runtime: str, directory: str, template: str = "http") -> str:
    if not DNS1035.fullmatch(name) or len(name) > MAX_NAME:
        raise UsageError(f"'{name}' is not a valid function name: lowercase letters, digits and '-', "
                         f"starting with a letter, at most {MAX_NAME} characters")
    python = runtime.startswith("python")
    node = runtime.startswith("node")
    if template not in ("http", "cloudevents"):
        raise UsageError(f"--template {template}: not a template (http, cloudevents)")
    if template == "cloudevents" and not (python or node):
        raise UsageError(f"--template cloudevents is for the python and node runtimes, not '{runtime}' (python3.11, "
                         "python3.12, python3.13, node20, node22, node24, node26)")
    folder = os.path.join(directory, name)
    if os.path.exists(folder):
        raise UsageError(f"{folder} already exists; pick another name or remove it")
    os.makedirs(directory, exist_ok=True)
    events = template == "cloudevents"
    files = {
        "function.yaml": FUNCTION_YAML.format(
            name=name, runtime=runtime, visibility="cluster-local" if events else "public",
            triggers=TRIGGERS if events else "",
            handler_line="handler: handler:handle\n" if python or node else
            (f"image: registry.example.com/functions/{name}   # the repository releases pin\n" if runtime == "image" else ""),
        ),
    }
    if python:
        files["handler.py"] = CLOUDEVENTS_HANDLER if events else HANDLER
        files["requirements.txt"] = "# one requirement per line, pinned (name==version); `fnops run` needs them " \
                                    "installed in its Python\n"
    elif node:
        files["handler.js"] = NODE_CLOUDEVENTS_HANDLER if events else NODE_HANDLER
        files["package.json"] = PACKAGE_JSON.format(name=name)
        files["package-lock.json"] = PACKAGE_LOCK.format(name=name)
    elif runtime == "dockerfile":
        files["Dockerfile"] = DOCKERFILE
        files["server.py"] = DOCKERFILE_SERVER
    # Build beside the target and rename: a failure leaves nothing half-written. mkdtemp makes
    # its folder 0700; the function folder gets what the umask gives any new folder.
    tmp = tempfile.mkdtemp(prefix=f".{name}-", dir=directory)
    try:
        os.chmod(tmp, 0o777 & ~_umask())
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
