// workflows/: the Temporal workflow code (deterministic: no drivers, no Node built-ins): one workflow
// per event, and one sequencer per ordered key. Every workflow the outbox worker registers:
export { publishEventWorkflow } from './publish-event';
export { keySequencerWorkflow } from './key-sequencer';
