/** The README a service reads: its configuration table against the settings the code reads. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_TEMPLATE } from '../../workers/process/config-template';

const README = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

describe('the README', () => {
  test('its configuration table names every setting `txoutbox config` prints, and no other', () => {
    // Arrange
    const settings = [...CONFIG_TEMPLATE.matchAll(/^(TXOUTBOX_[A-Z0-9_]+)=/gm)].map((m) => m[1]);
    const section = README.slice(README.indexOf('## Configuration'), README.indexOf('## Security'));
    const tableRows = section.split('\n').filter((line) => line.startsWith('| `TXOUTBOX_'));

    // Act
    const named = new Set(tableRows.flatMap((row) => [...(row.split('|')[1] ?? '').matchAll(/`(TXOUTBOX_[A-Z0-9_]+)`/g)].map((m) => m[1])));

    // Assert
    expect(settings.length).toBeGreaterThan(40);
    expect(settings.filter((name) => !named.has(name))).toEqual([]);
    expect([...named].filter((name) => name !== 'TXOUTBOX_CONFIG' && !settings.includes(name))).toEqual([]);
  });

  test('points at no file the package does not ship', () => {
    // The package ships dist/, RUNBOOK.md, BENCHMARKS.md, CHANGELOG.md and scripts/observability/;
    // CONTRIBUTING.md and ARCHITECTURE.md are named as the repository's, and `npm run demo` and
    // `npm test` as a checkout's (the two commands the project keeps first).
    expect(README).not.toMatch(/\.\.\/shared\//);
    expect(README).not.toMatch(/`(?:test|workers|domain|workflows|activities)\/[\w/.-]+`/);
    expect(README).not.toMatch(/npm run (?:bench|faults)/);
  });
});
