"""`fnops invoke`: send a running function a plain HTTP request or a CloudEvent (binary
mode: ce-* headers; structured mode: application/cloudevents+json), print the answer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

from ..errors import FnopsError, UsageError


def request(url: str, data: str | None, cloudevent: str | None = None, structured: bool = False,
            source: str = "fnops/invoke", content_type: str = "application/json", timeout: float = 30):
    """-> (status, content type, body bytes)."""
    body = (data or "").encode()
    headers = {"content-type": content_type}
    if cloudevent:
        event_id = str(uuid.uuid4())
        if structured:
            payload = {"specversion": "1.0", "id": event_id, "source": source, "type": cloudevent,
                       "datacontenttype": content_type}
            if data:
                try:
                    payload["data"] = json.loads(data) if content_type.endswith("json") else data
                except ValueError:
                    raise UsageError("--data is not JSON; pass --content-type for other data") from None
            body, headers = json.dumps(payload).encode(), {"content-type": "application/cloudevents+json"}
        else:
            headers.update({"ce-specversion": "1.0", "ce-id": event_id, "ce-source": source, "ce-type": cloudevent})
    req = urllib.request.Request(url, data=body if body or cloudevent else None, headers=headers,
                                 method="POST" if body or cloudevent else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("content-type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read()
    except OSError as e:
        raise FnopsError(f"cannot reach {url}: {getattr(e, 'reason', e)} (is `fnops run` serving it?)") from None
