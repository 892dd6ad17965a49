// domain/outbox/: the library's core, without drivers: the envelope and its validation, event types,
// the write API (createOutbox), the store's port by role, errors, the logger, tracing and partitions.
export * from './errors';
export * from './event';
export * from './event-id';
export * from './canonical-json';
export * from './event-types';
export * from './event-registry';
export * from './compatibility';
export * from './changelog';
export * from './options';
export * from './build-event';
export * from './outbox';
export * from './store';
export * from './cloudevents';
export * from './logger';
export * from './tracing';
export * from './partitions';
