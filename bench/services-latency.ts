// Where an idle tick's time goes, from the runs' histories (the server's clock): each run's
// path from the trigger to its close, phase by phase, and when (counted from the trigger) its
// milestones came, for the services' tick and its Temporal floors side by side.
import type { RunTimes } from './services-actions.ts';
import { percentile } from './support.ts';

/** One tick of a series: when its triggers (or starts) went out (epoch ms), and its runs. */
export interface Timed {
  at: number;
  timeline: RunTimes[];
}

export interface Series {
  label: string;
  ticks: Timed[];
}

type Span = (r: RunTimes, at: number) => number;

const PHASES: Array<[string, Span]> = [
  // The schedule's action time is stamped once its start returned, after the run's start: the
  // schedule's own part is the trigger to the run's start.
  ['trigger -> run started (schedule)', (r, at) => r.started - at],
  ['first workflow task queued', (r) => r.wftStarted - r.wftScheduled],
  ['first workflow task ran', (r) => r.wftCompleted - r.wftStarted],
  ['activity queued (scheduled -> started)', (r) => r.actStarted - r.actScheduled],
  ['activity ran (started -> completed)', (r) => r.actCompleted - r.actStarted],
  ['activity done -> run closed', (r) => r.closed - r.actCompleted],
];

const OFFSETS: Array<[string, keyof RunTimes]> = [
  ['run started', 'started'],
  ['first workflow task started', 'wftStarted'],
  ['activity started', 'actStarted'],
  ['activity completed', 'actCompleted'],
  ['run closed', 'closed'],
];

/** `p50 / p90 / max` of the span over every run of every tick, or `-` where none applies. */
function spread(s: Series, span: Span): string {
  const values = s.ticks
    .flatMap((t) => t.timeline.map((r) => span(r, t.at)))
    .filter((v) => Number.isFinite(v))
    .sort((a, b) => a - b);
  if (values.length === 0) return '-';
  const f = (p: number) => percentile(values, p).toFixed(0);
  return `${f(50)} / ${f(90)} / ${values.at(-1)!.toFixed(0)}`;
}

export function printLatency(series: Series[]) {
  const width = 40;
  const col = 22;
  const header = (title: string) =>
    console.log(`  ${title.padEnd(width)}${series.map((s) => s.label.padStart(col)).join('')}`);
  const line = (label: string, span: Span) =>
    console.log(
      `  ${label.padEnd(width)}${series.map((s) => spread(s, span).padStart(col)).join('')}`,
    );
  header('each run, phase by phase (ms)');
  for (const [label, span] of PHASES) line(label, span);
  header('from the trigger (ms)');
  for (const [label, key] of OFFSETS) line(label, (r, at) => r[key] - at);
  console.log(
    '  (p50 / p90 / max over every run of every round; by the server event times, the trigger by the bench clock)',
  );
}
