/**
 * Following a training run's progress from its files: the metrics it logs (read as they grow, or
 * re-read whole after they were refreshed from the trainer's own logs, e.g. TensorBoard), and how
 * long its output has been silent.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendAdapter, BackendContext, MetricRecord } from '../backends/types.js';
import { runCommand } from '../common/exec.js';
import type { EnvInfo, Metrics } from '../common/types.js';
import { reportPython } from '../report/write.js';
import { FileFollower } from './proc.js';

/** The latest train and validation metrics of a run, and the newest step they reached. */
export class MetricsView {
  readonly train: Metrics = {};
  readonly validation: Metrics = {};
  step: number;
  private follower: FileFollower;

  constructor(
    private readonly path: string,
    private readonly parse: (line: string) => MetricRecord | null,
    private readonly fromStep: number,
  ) {
    this.step = fromStep;
    this.follower = new FileFollower(path);
  }

  private consume(lines: string[]): void {
    for (const line of lines) {
      const rec = this.parse(line);
      if (!rec) continue;
      if (rec.kind === 'train') {
        Object.assign(this.train, rec.metrics);
        this.step = Math.max(this.step, rec.step);
      } else Object.assign(this.validation, rec.metrics);
    }
  }

  /** Metrics already written (a resumed run): shown at once; steps past the newest checkpoint are redone. */
  async catchUp(): Promise<void> {
    this.consume(await this.follower.readNewLines());
    this.step = this.fromStep;
  }

  async follow(): Promise<void> {
    this.consume(await this.follower.readNewLines());
  }

  /** After the file was rewritten as a whole: read it again from the start. */
  async reload(): Promise<void> {
    this.follower = new FileFollower(this.path);
    this.consume(await this.follower.readNewLines());
  }

  /** A step the trainer says it finished (from its stdout). */
  reached(step: number): void {
    this.step = Math.max(this.step, step);
  }
}

/** Time since a file last grew: a trainer that prints nothing for `minutes` is treated as hung. */
export class SilenceWatch {
  private size = -1;
  private since = Date.now();
  constructor(
    private readonly path: string,
    private readonly minutes: number | null,
  ) {}

  expired(): boolean {
    if (!this.minutes) return false;
    let size = 0;
    try {
      size = statSync(this.path).size;
    } catch {
      /* not written yet */
    }
    if (size !== this.size) {
      this.size = size;
      this.since = Date.now();
    }
    return Date.now() - this.since > this.minutes * 60_000;
  }
}

/**
 * For a backend whose metrics live in its own logs (NeMo RL: TensorBoard), rewrite metricsFile from
 * them every `everyMs`, with the Python that has the readers (the built-in trainer's environment).
 */
export class MetricsRefresher {
  private last = 0;
  private readonly python: string | null;
  constructor(
    private readonly ctx: BackendContext,
    private readonly backend: BackendAdapter,
    stateDir: string,
    env: EnvInfo | null,
    private readonly everyMs = 20_000,
  ) {
    this.python = backend.refreshMetrics ? reportPython(stateDir, backend.runsTrainerTools ? env : null) : null;
  }

  /** Refresh when due (or now, with `force`); true when metricsFile was rewritten. */
  async due(force = false): Promise<boolean> {
    if (!this.python || !this.backend.refreshMetrics) return false;
    if (!force && Date.now() - this.last < this.everyMs) return false;
    this.last = Date.now();
    const spec = this.backend.refreshMetrics(this.ctx, this.python);
    const r = await runCommand(spec.argv, { cwd: spec.cwd, timeoutMs: 120_000, logFile: join(this.ctx.paths.logDir, 'metrics-refresh.log') });
    return r.code === 0;
  }
}
