/**
 * Checks of a schedule's spec done before anything is recorded, so a bad one is a 400 naming its
 * field rather than a Temporal error later in the relay. The times themselves are Temporal's to
 * compute (ADR-0017): these only decide whether Temporal will understand the spec.
 */

interface CronField {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] as const;
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;

const CRON_FIELDS: readonly CronField[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  // 7 is Sunday too, as in every cron.
  { name: 'day of week', min: 0, max: 7, names: DAYS },
];

function valueOf(raw: string, field: CronField): number | undefined {
  if (/^\d{1,2}$/.test(raw)) {
    const n = Number(raw);
    return n >= field.min && n <= field.max ? n : undefined;
  }
  const index = field.names?.indexOf(raw.toUpperCase()) ?? -1;
  if (index < 0) return undefined;
  // Month names count from 1, day names from 0.
  return field.min === 1 ? index + 1 : index;
}

/** Why one comma-separated part of a field is not valid cron, or undefined if it is. */
function partProblem(part: string, field: CronField): string | undefined {
  const [range, step, ...extra] = part.split('/');
  if (extra.length > 0 || range === undefined || range === '') return `"${part}" is not a ${field.name}`;
  if (step !== undefined && !(/^\d{1,2}$/.test(step) && Number(step) >= 1)) {
    return `step "${step}" of the ${field.name} must be a positive integer`;
  }
  if (range === '*') return undefined;
  const [from, to, ...more] = range.split('-');
  if (more.length > 0 || from === undefined) return `"${part}" is not a ${field.name}`;
  const a = valueOf(from, field);
  if (a === undefined) return `"${from}" is not a ${field.name} (${field.min}–${field.max})`;
  if (to === undefined) return undefined;
  const b = valueOf(to, field);
  if (b === undefined) return `"${to}" is not a ${field.name} (${field.min}–${field.max})`;
  if (b < a) return `the ${field.name} range "${range}" ends before it starts`;
  return undefined;
}

/** Why `cron` is not a 5-field cron expression Temporal runs as we document it, or undefined. */
export function cronProblem(cron: string): string | undefined {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5) {
    return `must have 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`;
  }
  for (const [i, field] of CRON_FIELDS.entries()) {
    for (const part of fields[i]!.split(',')) {
      const problem = partProblem(part, field);
      if (problem !== undefined) return problem;
    }
  }
  return undefined;
}

/**
 * Whether `zone` is an IANA time zone name. Node's ICU data and the Temporal server's tzdata are
 * both the IANA database; a name one knows and the other not would only be a very new zone.
 */
export function isTimeZone(zone: string): boolean {
  if (zone === '' || zone.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
