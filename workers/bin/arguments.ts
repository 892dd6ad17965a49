/**
 * What the process bins take on their command line: `--help`, `--version` and `--config FILE`.
 * Everything else they read from the TXOUTBOX_* variables (`txoutbox config` lists them).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

/** txoutbox's version, from its package.json (found upwards from here: dist/workers/bin or workers/bin). */
export function packageVersion(): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'txoutbox') return pkg.version ?? 'unknown';
  }
  return 'unknown';
}

/**
 * The bin's arguments: prints the help or the version and exits (0), or a usage line and exits (2);
 * otherwise returns the settings file named by --config, if any.
 */
export function processArguments(bin: string, about: string, argv: string[]): { configFile: string | undefined } {
  let values: { help?: boolean; version?: boolean; config?: string };
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' }, config: { type: 'string' } } }));
  } catch (err) {
    process.stderr.write(`${bin}: ${err instanceof Error ? err.message : String(err)}\nusage: ${bin} [--config FILE] [--help] [--version]\n`);
    process.exit(2);
  }
  if (values.version) {
    process.stdout.write(`${packageVersion()}\n`);
    process.exit(0);
  }
  if (values.help) {
    process.stdout.write(
      [
        `usage: ${bin} [--config FILE] [--help] [--version]`,
        '',
        about,
        '',
        'settings: the TXOUTBOX_* variables (`txoutbox config` lists them with their defaults), or a JSON',
        'file of them named by --config FILE or TXOUTBOX_CONFIG (a variable that is set wins over the file).',
        'health: /healthz, /readyz and /metrics on TXOUTBOX_HEALTH_PORT.',
        'exit codes: 0 stopped on SIGTERM or SIGINT, 1 a server did not answer or the process failed,',
        '            2 a bad setting or a package not installed',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  return { configFile: values.config };
}
