// Jest setup for server-backed projects: the Temporal worker logs warnings and errors only,
// so test output shows what failed rather than every worker state change.
import { DefaultLogger, Runtime } from '@temporalio/worker';

try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // Already installed in this process by an earlier test file: its logger stays.
}
