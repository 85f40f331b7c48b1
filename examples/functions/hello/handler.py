def handle(event, context):
    return {"ok": True, "function": "hello", "event": event}
