def handle(event, context):
    return {"ok": True, "function": "checkout", "event": event}
