// A conservative estimate of how many bits of entropy a chosen secret carries, for
// secrets an operator types or generates (the bootstrap admin token). It cannot know how a
// string was made, so it assumes the smallest alphabet that explains it and gives nothing
// for the parts a guesser tries first: a string that is one shorter string repeated,
// long runs of one character or of neighbouring ones (aaaa, 1234, dcba), and strings
// drawn from only a handful of characters.

/** Character classes by the size of the alphabet they add. */
const CLASSES: { pattern: RegExp; size: number }[] = [
  { pattern: /[a-z]/, size: 26 },
  { pattern: /[A-Z]/, size: 26 },
  { pattern: /[0-9]/, size: 10 },
  { pattern: /[^a-zA-Z0-9]/, size: 33 }, // the other printable ASCII characters; anything else is rarer still
];

/** Fewer different characters than this is a pattern, not a random string. */
const MIN_DISTINCT_CHARACTERS = 8;
/** In a run of neighbouring characters, those past the third count for nothing. */
const RUN_FREE_LENGTH = 3;

function alphabetSize(secret: string): number {
  // Hex is the commonest encoding of random bytes and the smallest alphabet that explains it.
  if (/^[0-9a-f]+$/.test(secret) || /^[0-9A-F]+$/.test(secret)) return 16;
  return CLASSES.reduce((size, c) => (c.pattern.test(secret) ? size + c.size : size), 0);
}

/** Characters that are not the continuation of a run (same character, or ±1 each step). */
function charactersOutsideRuns(chars: string[]): number {
  const codes = chars.map((c) => c.codePointAt(0) ?? 0);
  let counted = 0;
  let run = 1;
  for (let i = 0; i < codes.length; i++) {
    const step = i > 0 ? (codes[i] ?? 0) - (codes[i - 1] ?? 0) : Number.NaN;
    const previousStep = i > 1 ? (codes[i - 1] ?? 0) - (codes[i - 2] ?? 0) : Number.NaN;
    run = Math.abs(step) <= 1 && (i < 2 || step === previousStep) ? run + 1 : Math.abs(step) <= 1 ? 2 : 1;
    if (run <= RUN_FREE_LENGTH) counted += 1;
  }
  return counted;
}

/** The bits of entropy `secret` has at least, estimated as a guesser would attack it. */
export function estimatedEntropyBits(secret: string): number {
  const repeated = /^(.+?)\1+$/s.exec(secret);
  if (repeated?.[1]) return estimatedEntropyBits(repeated[1]);
  const chars = [...secret];
  if (new Set(chars).size < MIN_DISTINCT_CHARACTERS) return 0;
  return charactersOutsideRuns(chars) * Math.log2(alphabetSize(secret));
}
