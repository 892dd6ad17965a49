// Preloaded into a worker process by the fault harness (NODE_OPTIONS=--require ...): when the file
// named by TXOUTBOX_FAULT_KILL_AFTER_ACK_FILE exists, the next send Kafka acknowledges kills the
// process with SIGKILL before the activity can complete or record anything: the crash between the
// broker's acknowledgement and the activity's completion. The file is removed so it fires once.
const { existsSync, rmSync } = require('node:fs');

const trigger = process.env.TXOUTBOX_FAULT_KILL_AFTER_ACK_FILE;
if (trigger) {
  const kafkajs = require('kafkajs');
  const createProducer = kafkajs.Kafka.prototype.producer;
  kafkajs.Kafka.prototype.producer = function producer(...args) {
    const created = createProducer.apply(this, args);
    const send = created.send;
    created.send = async function sendThenMaybeDie(record) {
      const result = await send.call(this, record);
      if (existsSync(trigger)) {
        rmSync(trigger, { force: true });
        process.kill(process.pid, 'SIGKILL');
        await new Promise(() => undefined);
      }
      return result;
    };
    return created;
  };
}
