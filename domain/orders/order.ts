/**
 * The demo service's domain: orders that are placed and cancelled. Plain decisions, no I/O:
 * `decide(command, state)` returns the events a command produces, `evolve` folds them into state.
 */

export interface OrderLine {
  sku: string;
  quantity: number;
  unitPriceCents: number;
}

export type OrderCommand =
  | { kind: 'PlaceOrder'; orderId: string; customerId: string; lines: OrderLine[] }
  | { kind: 'CancelOrder'; orderId: string; reason: string };

export type OrderEvent =
  | { type: 'orders.OrderPlaced'; orderId: string; customerId: string; lines: OrderLine[]; totalCents: number; placedAt: string }
  | { type: 'orders.OrderCancelled'; orderId: string; reason: string; cancelledAt: string };

export type OrderState =
  | { status: 'none' }
  | { status: 'placed'; orderId: string; customerId: string; totalCents: number }
  | { status: 'cancelled'; orderId: string; customerId: string; totalCents: number };

export const NO_ORDER: OrderState = { status: 'none' };

/** A command that the current state does not allow. */
export class OrderRuleViolation extends Error {
  override readonly name = 'OrderRuleViolation';
}

export function decide(command: OrderCommand, state: OrderState, now: () => Date): OrderEvent[] {
  switch (command.kind) {
    case 'PlaceOrder': {
      if (state.status !== 'none') throw new OrderRuleViolation(`order ${command.orderId} already exists`);
      if (command.lines.length === 0) throw new OrderRuleViolation('an order needs at least one line');
      for (const line of command.lines) {
        if (!Number.isInteger(line.quantity) || line.quantity < 1) throw new OrderRuleViolation(`quantity of ${line.sku} must be a positive integer`);
      }
      const totalCents = command.lines.reduce((sum, l) => sum + l.quantity * l.unitPriceCents, 0);
      return [
        {
          type: 'orders.OrderPlaced',
          orderId: command.orderId,
          customerId: command.customerId,
          lines: command.lines,
          totalCents,
          placedAt: now().toISOString(),
        },
      ];
    }
    case 'CancelOrder': {
      if (state.status === 'none') throw new OrderRuleViolation(`order ${command.orderId} does not exist`);
      if (state.status === 'cancelled') return []; // cancelling twice changes nothing
      return [{ type: 'orders.OrderCancelled', orderId: command.orderId, reason: command.reason, cancelledAt: now().toISOString() }];
    }
    default: {
      const unknown: never = command;
      throw new OrderRuleViolation(`unknown command ${JSON.stringify(unknown)}`);
    }
  }
}

export function evolve(state: OrderState, event: OrderEvent): OrderState {
  switch (event.type) {
    case 'orders.OrderPlaced':
      return { status: 'placed', orderId: event.orderId, customerId: event.customerId, totalCents: event.totalCents };
    case 'orders.OrderCancelled':
      return state.status === 'none' ? state : { ...state, status: 'cancelled' };
    default: {
      const unknown: never = event;
      throw new OrderRuleViolation(`unknown event ${JSON.stringify(unknown)}`);
    }
  }
}
