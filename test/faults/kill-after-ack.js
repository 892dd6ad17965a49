// Preloaded into the worker and relay processes by the fault harness (NODE_OPTIONS=--require ...):
// when the file named by TXOUTBOX_FAULT_KILL_AFTER_ACK_FILE exists, the next send (or batch: the
// relay's fast path) Kafka acknowledges kills the process with SIGKILL before anything is recorded:
// the crash between the broker's acknowledgement and the activity's completion, or the fast path's
// mark. The file is removed so it fires once.
const { existsSync, rmSync } = require('node:fs');

const trigger = process.env.TXOUTBOX_FAULT_KILL_AFTER_ACK_FILE;
if (trigger) {
  const kafkajs = require('kafkajs');
  const createProducer = kafkajs.Kafka.prototype.producer;
  kafkajs.Kafka.prototype.producer = function producer(...args) {
    const created = createProducer.apply(this, args);
    for (const method of ['send', 'sendBatch']) {
      const original = created[method];
      created[method] = async function thenMaybeDie(record) {
        const result = await original.call(this, record);
        if (existsSync(trigger)) {
          rmSync(trigger, { force: true });
          process.kill(process.pid, 'SIGKILL');
          await new Promise(() => undefined);
        }
        return result;
      };
    }
    return created;
  };
}
