import type { OutboxEvent } from '../outbox';
import type { OrderCommand } from './order';

/** The demo's orders service, one per store: each command is one transaction with its outbox events. */
export interface OrderService {
  /** Creates the orders table or collection. */
  setup(): Promise<void>;
  /**
   * Runs the command in one transaction. `afterWrite`, when given, runs inside the transaction after
   * the outbox write: a failure there (the demo's "payment declined") rolls everything back.
   */
  handle(command: OrderCommand, afterWrite?: (added: OutboxEvent[]) => Promise<void>): Promise<OutboxEvent[]>;
}
