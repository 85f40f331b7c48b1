"""`fnops invoke`: send a running function a plain HTTP request or a CloudEvent (binary
mode: ce-* headers; structured mode: application/cloudevents+json), print the answer.

The function is found by name among those `fnops run` serves (state.py); --port or --url
address a server directly. A CloudEvent reply's attributes go to stderr, its data to stdout.

The answer is the function's, so it is not trusted to drive a terminal: on a terminal its
control characters (but newline and tab) are shown as escapes, as `ls` shows file names;
into a pipe or a file it is written byte for byte (for jq, diff, or a binary answer)."""

from __future__ import annotations

import base64
import json
import mimetypes
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from ..errors import FnopsError, UsageError

TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)


def _where(entry: dict) -> str:
    return f"{entry['name']} on {entry.get('url') or entry.get('port')}"


def find(function: str | None, port: int | None, wait: float = 30.0) -> str:
    """The URL of FUNCTION as `fnops run` serves it (or the only function served)."""
    from .state import served

    deadline = time.monotonic() + wait
    while True:
        entries = served()
        if function is None and port is not None:
            return f"http://127.0.0.1:{port}/"
        matches = [e for e in entries if function is None or e.get("name") == function]
        if not matches:
            others = ", ".join(_where(e) for e in entries)
            if function is None:
                raise FnopsError("no function is served by `fnops run` (start one: fnops run NAME), "
                                 "or pass --port/--url")
            raise FnopsError(f"no `fnops run` serves '{function}' "
                             + (f"(served now: {others})" if others else f"(start it: fnops run {function})"))
        if len(matches) > 1:
            which = "several functions are" if function is None else f"'{function}' is"
            raise UsageError(f"{which} served ({', '.join(_where(e) for e in matches)}): "
                             + ("name one" if function is None else "pick one with --port"))
        entry = matches[0]
        if port is not None and entry.get("port") != port:
            raise UsageError(f"{entry['name']} is served on port {entry.get('port')}, not {port} (leave --port out)")
        if entry.get("state") == "serving":
            return entry["url"]
        if entry.get("state") == "down":
            raise FnopsError(f"{entry['name']} is not running: {entry.get('reason') or 'it stopped'} "
                             "(fnops run restarts it when its folder changes)")
        if time.monotonic() >= deadline:  # still starting (a dockerfile function builds first)
            raise FnopsError(f"{entry['name']} is still starting under `fnops run`; try again when it says serving")
        time.sleep(0.2)


def read_data(data: str | None) -> tuple[bytes | None, str | None]:
    """--data as given: inline text, @FILE (any bytes) or @- (stdin). -> (body, the content
    type its file name suggests, or None)."""
    if data is None:
        return None, None
    if not data.startswith("@"):
        return data.encode(), None
    path = data[1:]
    if path == "-":
        return sys.stdin.buffer.read(), None
    try:
        with open(path, "rb") as f:
            body = f.read()
    except FileNotFoundError:
        raise UsageError(f"--data @{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"--data @{path}: is a folder, not a file") from None
    except OSError as e:
        raise UsageError(f"--data @{path}: cannot read it ({e.strerror})") from None
    return body, mimetypes.guess_type(path)[0]


def sniff(body: bytes) -> str:
    """A content type for a file whose name says none: JSON, text, or bytes."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    try:
        json.loads(text)
        return "application/json"
    except ValueError:
        return "text/plain; charset=utf-8"


def parse_headers(items) -> list[tuple[str, str]]:
    out = []
    for item in items:
        name, colon, value = item.partition(":")
        if not colon or not TOKEN.fullmatch(name.strip()) or any(c in value for c in "\r\n\0"):
            raise UsageError(f"-H '{item[:60]}': want 'Name: value' (a header name, a colon, a value on one line)")
        out.append((name.strip(), value.strip()))
    return out


def target(url: str, path: str | None, query) -> str:
    """The base URL with --path and --query added."""
    parts = urllib.parse.urlsplit(url)
    new_path = parts.path
    if path:
        if not path.startswith("/"):
            raise UsageError(f"--path '{path[:60]}' must start with '/'")
        new_path, _, extra = path.partition("?")
        if extra:
            query = [*(q for q in extra.split("&") if q), *query]
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    for q in query:
        name, eq, value = q.partition("=")
        if not name:
            raise UsageError(f"--query '{q[:60]}': want NAME=VALUE")
        pairs.append((name, value))
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, new_path or "/", urllib.parse.urlencode(pairs),
                                    ""))


def request(url: str, data, cloudevent: str | None = None, structured: bool = False,
            source: str = "fnops/invoke", content_type: str | None = "application/json", timeout: float = 30,
            method: str | None = None, headers=(), event_id: str | None = None):
    """-> (status, response headers (lower-case names), body bytes). `data`: str or bytes."""
    body = data.encode() if isinstance(data, str) else (data or b"")
    content_type = content_type or "application/json"
    out = {"content-type": content_type}
    if cloudevent:
        event_id = event_id or str(uuid.uuid4())
        if structured:
            payload = {"specversion": "1.0", "id": event_id, "source": source, "type": cloudevent,
                       "datacontenttype": content_type}
            if body:
                ct = content_type.split(";")[0].strip().lower()
                if ct == "application/json" or ct.endswith("+json"):
                    try:
                        payload["data"] = json.loads(body)
                    except ValueError:
                        raise UsageError("--data is not JSON; pass --content-type for other data") from None
                else:
                    try:
                        payload["data"] = body.decode("utf-8") if ct.startswith("text/") else None
                    except UnicodeDecodeError:
                        payload["data"] = None
                    if payload["data"] is None:
                        del payload["data"]
                        payload["data_base64"] = base64.b64encode(body).decode()
            body, out = json.dumps(payload).encode(), {"content-type": "application/cloudevents+json"}
        else:
            out.update({"ce-specversion": "1.0", "ce-id": event_id, "ce-source": source, "ce-type": cloudevent})
    for name, value in headers:
        out[name.lower()] = value
    verb = method or ("POST" if body or cloudevent else "GET")
    req = urllib.request.Request(url, data=body if body or cloudevent or verb not in ("GET", "HEAD") else None,
                                 headers=out, method=verb)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
    except OSError as e:
        raise FnopsError(f"cannot reach {url}: {getattr(e, 'reason', e)} (is `fnops run` serving it?)") from None


def reply_cloudevent(headers: dict, body: bytes) -> dict | None:
    """The reply's CloudEvent attributes (binary or structured mode), or None."""
    if "ce-specversion" in headers:
        return {k[3:]: urllib.parse.unquote(v) for k, v in headers.items() if k.startswith("ce-")} | (
            {"datacontenttype": headers["content-type"]} if headers.get("content-type") else {})
    if headers.get("content-type", "").split(";")[0].strip().lower() == "application/cloudevents+json":
        try:
            ce = json.loads(body)
        except ValueError:
            return None
        if isinstance(ce, dict):
            return {k: v for k, v in ce.items() if k not in ("data", "data_base64")}
    return None


def write_attributes(attrs: dict, stream=None) -> None:
    """A reply's CloudEvent attributes, one `name: value` per line (on stderr: stdout keeps
    the data, for a pipe)."""
    from ..escape import terminal_text

    stream = stream or sys.stderr
    order = ["specversion", "type", "source", "id", "time", "subject", "datacontenttype", "dataschema"]
    names = [n for n in order if n in attrs] + sorted(n for n in attrs if n not in order)
    stream.write("CloudEvent reply:\n")
    for n in names:
        stream.write(f"  {terminal_text(n)}: {terminal_text(str(attrs[n]))}\n")
    stream.flush()


def write_answer(body: bytes, stream=None) -> None:
    """The answer on `stream` (stdout): escaped text on a terminal, the exact bytes elsewhere."""
    from ..escape import terminal_text

    stream = stream or sys.stdout
    stream.flush()
    if stream.isatty():
        text = terminal_text(body.decode("utf-8", "replace"))
        stream.write(text if text.endswith("\n") or not text else text + "\n")
    else:
        stream.buffer.write(body)
    stream.flush()

