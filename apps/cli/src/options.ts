// Parsers for option values: commander turns what they throw into the command's one-line error.
import { InvalidArgumentError } from "commander";

export const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive whole number`);
  return n;
};

export const date = (value: string) => {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError("must be a date such as 2026-12-01 or 2026-12-01T12:00:00Z");
  return d;
};

// The API's rule for q: a shorter term would scan the whole inventory.
export const searchTerm = (value: string) => {
  if ([...value].length < 3) throw new InvalidArgumentError("must be at least 3 characters (shorter terms would scan the whole inventory)");
  if ([...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) throw new InvalidArgumentError("must not contain control characters");
  return value;
};
