// Schedules are node-cron expressions. node-cron fires the ticks; the due times stored in
// PostgreSQL are computed here from the injectable clock, with node-cron's own matcher, so
// a test that travels in time and the real cron agree on what "the next slot" is.
import cron from "node-cron";

export const SCHEDULE_TIMEZONE = "Etc/UTC";
const MINUTE = 60_000;
const SEARCH_LIMIT_MINUTES = 366 * 24 * 60;

/** Throws a sentence naming the setting when an expression is not valid cron. */
export function assertCron(expression: string, setting: string): void {
  if (!cron.validate(expression)) throw new Error(`${setting}: '${expression}' is not a valid cron expression`);
}

/** The first time strictly after `after` that `expression` fires, in UTC. */
export function nextFireAfter(expression: string, after: Date): Date {
  const seconds = cron.parse(expression).second;
  const matcher = cron.createTask(expression, () => {}, { timezone: SCHEDULE_TIMEZONE });
  try {
    const firstMinute = Math.floor(after.getTime() / MINUTE) * MINUTE;
    for (let i = 0; i <= SEARCH_LIMIT_MINUTES; i++) {
      const minute = firstMinute + i * MINUTE;
      for (const second of seconds) {
        const candidate = new Date(minute + second * 1000);
        if (candidate > after && matcher.match(candidate)) return candidate;
      }
    }
  } finally {
    void matcher.destroy();
  }
  throw new Error(`'${expression}' does not fire within a year`);
}
