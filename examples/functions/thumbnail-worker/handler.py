def handle(event, context):
    return {"ok": True, "function": "thumbnail-worker", "event": event}
