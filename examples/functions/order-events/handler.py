def handle(event, context):
    return {"ok": True, "function": "order-events", "event": event}
