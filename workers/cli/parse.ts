/** Durations and times as the CLI's options take them. */
import { CliError, ExitCode } from './io';

/** `7d`, `12h`, `30m`, `45s` → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  if (!match) throw new CliError(`a duration looks like 7d, 12h, 30m or 45s, got ${JSON.stringify(text)}`, ExitCode.usage);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

export function parseTime(flag: string, text: string | undefined): Date {
  const date = text === undefined ? new Date(NaN) : new Date(text);
  if (Number.isNaN(date.getTime())) throw new CliError(`${flag} needs an ISO-8601 time, got ${JSON.stringify(text ?? '')}`, ExitCode.usage);
  return date;
}
