/**
 * A file of settings beside the variables: `--config txoutbox.json` or `TXOUTBOX_CONFIG`, a JSON
 * object of the same TXOUTBOX_* names (`txoutbox config` lists them), whose values are strings,
 * numbers or booleans. A variable that is set wins over the file, so one deployment's file can be
 * adjusted by its environment.
 */
import { readFileSync } from 'node:fs';
import { OutboxError, OutboxErrorCode } from '../../domain/outbox';
import { CONFIG_TEMPLATE } from './config-template';

/** Every variable the template names: the only keys a settings file may hold. */
const KNOWN = new Set([...CONFIG_TEMPLATE.matchAll(/^(TXOUTBOX_[A-Z0-9_]+)=/gm)].map((m) => m[1] as string));

/** `env` with the settings file's values under it (`file`, else TXOUTBOX_CONFIG; none: `env` as it is). */
export function withSettingsFile(env: NodeJS.ProcessEnv, file: string | undefined = env.TXOUTBOX_CONFIG): NodeJS.ProcessEnv {
  if (file === undefined || file.trim() === '') return env;
  const bad = (why: string): OutboxError => new OutboxError(OutboxErrorCode.invalidConfig, `settings file ${file}: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw bad(err instanceof SyntaxError ? `is not JSON: ${err.message}` : `cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad('must hold a JSON object of TXOUTBOX_* settings');
  const fromFile: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!KNOWN.has(name)) throw bad(`${JSON.stringify(name)} is not a txoutbox setting (txoutbox config lists them)`);
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw bad(`${name} must be a string, a number or a boolean`);
    fromFile[name] = String(value);
  }
  const set = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ''));
  return { ...fromFile, ...set };
}
