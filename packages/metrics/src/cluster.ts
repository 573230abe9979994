// One /metrics for a process and the API workers it forked (node:cluster): the primary
// asks each worker for its registry over the cluster's IPC channel and merges the answers
// with its own (counters and histograms summed, as prom-client's AggregatorRegistry does).
import cluster, { type Worker } from "node:cluster";
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from "prom-client";
import { registry } from "./index.ts";

const REQUEST = "pki:metrics-request";
const ANSWER = "pki:metrics-answer";
/** A worker that does not answer in time is left out of that scrape rather than stalling it. */
const WORKER_ANSWER_MS = 2_000;

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];
interface MetricsMessage {
  type: typeof REQUEST | typeof ANSWER;
  id: number;
  metrics?: MetricsJson;
}

const isMetricsMessage = (message: unknown): message is MetricsMessage =>
  typeof message === "object" && message !== null && ((message as MetricsMessage).type === REQUEST || (message as MetricsMessage).type === ANSWER);

/** In a worker: answers the primary's metrics requests with this process's registry. */
export function answerMetricsRequests(): void {
  process.on("message", (message: unknown) => {
    if (!isMetricsMessage(message) || message.type !== REQUEST) return;
    void registry.getMetricsAsJSON().then((metrics) => process.send?.({ type: ANSWER, id: message.id, metrics }));
  });
}

let nextRequest = 0;

function askWorker(worker: Worker): Promise<MetricsJson | undefined> {
  const id = ++nextRequest;
  return new Promise((resolve) => {
    const done = (metrics: MetricsJson | undefined) => {
      clearTimeout(timer);
      worker.off("message", onMessage);
      resolve(metrics);
    };
    const onMessage = (message: unknown) => {
      if (isMetricsMessage(message) && message.type === ANSWER && message.id === id) done(message.metrics);
    };
    const timer = setTimeout(() => done(undefined), WORKER_ANSWER_MS);
    worker.on("message", onMessage);
    if (!worker.isConnected()) return done(undefined);
    worker.send({ type: REQUEST, id });
  });
}

/** The Prometheus text for this process, plus every live cluster worker's when it is a primary. */
export async function scrapeMetrics(): Promise<string> {
  const workers = cluster.isPrimary ? Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w) : [];
  if (!workers.length) return registry.metrics();
  const answers = await Promise.all(workers.map(askWorker));
  const all = [await registry.getMetricsAsJSON(), ...answers.filter((a): a is MetricsJson => !!a)];
  return AggregatorRegistry.aggregate(all).metrics();
}
