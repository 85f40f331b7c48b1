def handle(event, context):
    return {"ok": True, "function": "orders-consumer", "event": event}
