#!/bin/bash
# usage: proc.sh REPO  -- drains exp.outbox_events (20000 rows) with the relay process of REPO
cd /work/main && source /tmp/env.out
[ -n "$FRESH" ] || psql "$TXOUTBOX_PG_URL" -qc "update exp.outbox_events set status = 'pending', owner = null, claimed_until = null, kafka_partition = null, kafka_offset = null, published_at = null; insert into exp.outbox_checkpoints (name, txid, id, updated_at) values ('p', '0'::xid8, '00000000-0000-0000-0000-000000000000', now()) on conflict (name) do update set txid = '0'::xid8, id = '00000000-0000-0000-0000-000000000000'"
cd "$1"
export TXOUTBOX_STORE=postgres TXOUTBOX_PG_SCHEMA=exp TXOUTBOX_RELAY_NAME=p TXOUTBOX_FAST_PATH_TOPICS=exp TXOUTBOX_TASK_QUEUE=exp TXOUTBOX_RELAY_BATCH_SIZE=${B:-100}
node --require tsx/cjs workers/bin/relay.ts 2> /tmp/proc-relay.log &
pid=$!
t0=$(date +%s.%N)
while true; do n=$(psql "$TXOUTBOX_PG_URL" -tAc "select count(*) from exp.outbox_events where status <> 'published'"); [ "$n" = 0 ] && break; sleep 0.05; done
t1=$(date +%s.%N)
kill $pid; wait $pid
psql "$TXOUTBOX_PG_URL" -tAc "select count(*), extract(epoch from max(published_at) - min(published_at)) from exp.outbox_events"
echo "wall incl. start: $(echo "$t1 - $t0" | bc)"
