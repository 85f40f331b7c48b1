def handle(event, context):
    return {"ok": True, "function": "nightly-report", "event": event}
