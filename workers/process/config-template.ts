// Every TXOUTBOX_* variable with its default and a word on what it does: `txoutbox config` prints it.
/** Every variable, with its default: printed by `txoutbox config`. */
export const CONFIG_TEMPLATE = `# txoutbox configuration (environment variables)
TXOUTBOX_STORE=mongodb                  # mongodb | postgres
TXOUTBOX_PG_URL=postgres://txoutbox:txoutbox@127.0.0.1:5432/txoutbox
TXOUTBOX_PG_SCHEMA=public
TXOUTBOX_MONGODB_URI=mongodb://127.0.0.1:27017/?replicaSet=secantus&directConnection=true # a replica set (store = mongodb)
TXOUTBOX_MONGODB_DB=txoutbox
TXOUTBOX_TEMPORAL_ADDRESS=127.0.0.1:7233
TXOUTBOX_TEMPORAL_NAMESPACE=default
TXOUTBOX_TEMPORAL_UI_URL=http://127.0.0.1:8233
TXOUTBOX_TASK_QUEUE=txoutbox
TXOUTBOX_WORKFLOW_ID_PREFIX=outbox-     # event workflow ids are <prefix><event id> (relay and CLI must agree)
TXOUTBOX_KAFKA_BROKERS=127.0.0.1:9092
TXOUTBOX_KAFKA_REQUEST_TIMEOUT_MS=30000 # kafkajs' wait for one broker answer (the fast path uses 15000)
TXOUTBOX_HEALTH_PORT=0                  # /healthz and /readyz of the relay or worker (0: any free port)
TXOUTBOX_HEALTH_PORT_FILE=              # relay, worker: write the health port they listen on to this file
TXOUTBOX_LOG_LEVEL=info                 # debug | info | warn | error
TXOUTBOX_RELAY_NAME=relay               # checkpoint name; relays sharing it share a position
TXOUTBOX_RELAY_PARTITIONED=false        # relays sharing a name share the partitions by leases, each reading its own
TXOUTBOX_RELAY_LEASE_MS=15000           # partitioned relay: how long its leases last unrenewed (renewed every third)
TXOUTBOX_RELAY_MEMBER=                  # partitioned relay: its id in the group (default: host-pid-random)
TXOUTBOX_PARTITIONS=16                  # migrate: the outbox's partition count, fixed by its first set-up
TXOUTBOX_PUBLISH_LOCAL_ACTIVITY=false   # publish as a local activity (fewer history events)
TXOUTBOX_PUBLISH_FIRST_ATTEMPT_LOCAL=true # first attempt as a local activity, the others as the activity
TXOUTBOX_PUBLISH_MAX_ATTEMPTS=10        # relay: publish attempts before an event is escalated as stuck (0: no limit)
TXOUTBOX_PUBLISH_TIMEOUT_MS=30000       # relay: longest one publish attempt may take
TXOUTBOX_PUBLISH_RETRY_INITIAL_MS=1000  # relay: wait before the first retry (doubling after each)
TXOUTBOX_PUBLISH_RETRY_MAX_MS=60000     # relay: longest wait between two attempts
TXOUTBOX_DEAD_LETTER_TOPIC=             # relay: topic that gets a copy of each stuck event (unset: none)
TXOUTBOX_RELAY_START_CONCURRENCY=16     # relay: workflow starts in flight
TXOUTBOX_SEQUENCER_BUFFER=500           # relay: events a key's sequencer keeps behind the one it holds (the rest wait for a sweep)
TXOUTBOX_SEQUENCER_RUN_LIMIT=100        # relay: events of a key its sequencer publishes in one run (1: no runs, one at a time)
TXOUTBOX_RELAY_RUNS_WORKER=false        # relay: run the worker in the same process, on one Temporal connection
TXOUTBOX_EAGER_START=                   # relay running the worker: eager workflow start (first task in the start's reply; unset: as TXOUTBOX_RELAY_RUNS_WORKER)
TXOUTBOX_RELAY_BATCH_SIZE=100           # relay: events read from the feed per batch, at most 500 (default 500 with the fast path on)
TXOUTBOX_RELAY_CHECKPOINT_EVERY_MS=1000 # relay: shortest time between two saves of the feed's position while busy (0: every batch)
TXOUTBOX_WORKER_WORKFLOW_TASKS=40       # worker: concurrent workflow tasks
TXOUTBOX_WORKER_WORKFLOW_POLLS=10       # worker: concurrent workflow task polls (at most the tasks)
TXOUTBOX_WORKER_ACTIVITY_TASKS=100      # worker: concurrent activities
TXOUTBOX_COMPENSATIONS_MODULE=          # worker: a module exporting \`compensations\` (event type -> async (event) => void)
TXOUTBOX_CONTRACTS_MODULE=              # worker, relay, CLI: a module exporting \`registry\` (createEventRegistry): the version each type is published as
TXOUTBOX_PRODUCER_LINGER_MS=            # worker: a first publish waits this long for others to share its request (unset: 0)
TXOUTBOX_FAST_PATH_TOPICS=              # relay: topics whose events it publishes itself, in batches (failures become workflows)
TXOUTBOX_FAST_PATH_TYPES=               # relay: event types it publishes itself
# Security. Secrets are never logged or printed (\`txoutbox config --effective\` shows them redacted).
# PostgreSQL: TLS and credentials in TXOUTBOX_PG_URL (?sslmode=verify-full&sslrootcert=/path/ca.pem).
# MongoDB: TLS and credentials in TXOUTBOX_MONGODB_URI (?tls=true&tlsCAFile=/path/ca.pem&authSource=admin).
TXOUTBOX_KAFKA_TLS=false                # true: TLS to the brokers
TXOUTBOX_KAFKA_TLS_CA_FILE=             # PEM CA (default: the system's)
TXOUTBOX_KAFKA_TLS_CERT_FILE=           # PEM client certificate (mTLS; with the key)
TXOUTBOX_KAFKA_TLS_KEY_FILE=            # PEM client key
TXOUTBOX_KAFKA_SASL_MECHANISM=          # plain | scram-sha-256 | scram-sha-512 (unset: no SASL)
TXOUTBOX_KAFKA_SASL_USERNAME=
TXOUTBOX_KAFKA_SASL_PASSWORD=           # secret
TXOUTBOX_TEMPORAL_TLS=false             # true: TLS to the Temporal frontend
TXOUTBOX_TEMPORAL_TLS_CA_FILE=          # PEM CA (default: the system's)
TXOUTBOX_TEMPORAL_TLS_CERT_FILE=        # PEM client certificate (mTLS; with the key)
TXOUTBOX_TEMPORAL_TLS_KEY_FILE=         # PEM client key
TXOUTBOX_TEMPORAL_TLS_SERVER_NAME=      # SNI / name to verify, when it differs from the address
TXOUTBOX_TEMPORAL_API_KEY=              # secret; sent as a bearer token over TLS
`;
