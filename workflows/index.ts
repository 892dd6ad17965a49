// Every workflow the outbox worker registers.
export { publishEventWorkflow } from './publish-event';
export { keySequencerWorkflow } from './key-sequencer';
