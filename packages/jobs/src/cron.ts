// Schedules are node-cron expressions. node-cron fires the ticks; the due times stored in
// PostgreSQL are computed from the injectable clock by cron-parser's next-run computation
// (no minute-by-minute scan), so a test that travels in time and the real cron agree on
// what "the next slot" is. Both read the same five- or six-field syntax; assertCron uses
// node-cron's validator, since node-cron is what fires.
import cron from "node-cron";
import { CronExpressionParser } from "cron-parser";

export const SCHEDULE_TIMEZONE = "Etc/UTC";

/** Throws a sentence naming the setting when an expression is not valid cron. */
export function assertCron(expression: string, setting: string): void {
  if (!cron.validate(expression)) throw new Error(`${setting}: '${expression}' is not a valid cron expression`);
  // With both restricted, node-cron fires when both match and classic cron (cron-parser)
  // when either does: the due time and the tick would disagree, so allow only one.
  const fields = expression.trim().split(/\s+/);
  const [dayOfMonth, dayOfWeek] = fields.length === 6 ? [fields[3], fields[5]] : [fields[2], fields[4]];
  if (dayOfMonth !== "*" && dayOfWeek !== "*") throw new Error(`${setting}: '${expression}' restricts both day of month and day of week; use one of them (the other '*')`);
}

/** The first time strictly after `after` that `expression` fires, in UTC. */
export function nextFireAfter(expression: string, after: Date): Date {
  try {
    return CronExpressionParser.parse(expression, { currentDate: after, tz: SCHEDULE_TIMEZONE }).next().toDate();
  } catch (error) {
    throw new Error(`'${expression}' has no next run: ${(error as Error).message}`, { cause: error });
  }
}
