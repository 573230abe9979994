// /usr/bin/time -v around a command: wall seconds and peak RSS.
import { run } from "./proc.ts";

export function timeV(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}) {
  const r = run("/usr/bin/time", ["-v", command, ...args], { ...options, allowFail: true });
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (!wall || !rss) throw new Error(`/usr/bin/time gave no figures: ${r.stderr.slice(-1000)}`);
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  const exit = /Exit status: (\d+)/.exec(r.stderr)?.[1];
  return { seconds, rssMB: Number(rss[1]) / 1024, exit: Number(exit ?? r.status), stderr: r.stderr, stdout: r.stdout };
}
