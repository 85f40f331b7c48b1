"""How much one function folder may ask for.

`fnops render` runs in Argo CD's repo-server on whatever a pusher wrote. yamldoc bounds the
input (≤ 512 KiB of values after alias expansion); these bounds keep what the renderer
*builds* from it bounded too, before it builds it. With them, no rendered string is
repeated more than a small, fixed number of times, so the manifests stay within a small
multiple of the input. The one repetition that multiplies two lists — a KEDA ScaledObject
has one kafka trigger per topic, each carrying the whole server list — is bounded by
MAX_KEDA_SCALERS × MAX_KAFKA_SERVERS × MAX_HOSTPORT (about 280 KB).

Each limit is far above what a function needs and each has a reason of its own besides.
"""

from __future__ import annotations

MAX_TRIGGERS = 32  # `<name>-<kind>-<n>` object names stay within 63 characters (name ≤ 54)
MAX_KAFKA_SERVERS = 16  # per trigger; a bootstrap list names a few brokers, not the cluster
MAX_KAFKA_TOPICS = 64  # per trigger
MAX_KEDA_SCALERS = 64  # a ScaledObject's triggers (one per topic and cron window): each is an HPA metric
MAX_HOSTPORT = 253 + 6  # a DNS name, ':' and a port
MAX_TOPIC = 249  # Kafka's own limit on a topic name
MAX_CONSUMER_GROUP = 255
MAX_ENV = 256  # variables in `env`
MAX_ENV_FROM = 32  # secrets, and configMaps, each
MAX_HOSTS = 32  # KEDA HTTP hosts
MAX_FILTER = 16  # CloudEvents attributes in one event trigger's filter
MAX_CRON = 128  # characters in a schedule; "0 9-17/2 * * MON-FRI" is 20
# Environments (overlays and releases/ pins together): `fnops validate` checks each one.
MAX_ENVIRONMENTS = 32
MAX_RELEASE_BYTES = 4 * 1024  # releases/<env>.yaml: fnops writes well under 2 KiB
MAX_PROBLEMS = 100  # reported per file and environment; past that the rest are counted
