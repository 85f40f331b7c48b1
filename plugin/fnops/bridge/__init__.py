"""The notifications bridge: Argo CD and Alertmanager webhooks in, a durable outbox, and
sinks out (Slack, GitHub, a Git audit log, guarded rollback)."""
