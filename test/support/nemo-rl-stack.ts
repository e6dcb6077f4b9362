/**
 * What every NeMo RL workflow test stands on: a dev server, a NeMo RL TEST DOUBLE checkout, a Hub
 * TEST DOUBLE, a state dir of its own (sharing the built environments) and `grpo worker` processes
 * on the suite's task queue. Register it with node:test's before/after through `setup`/`teardown`.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { STATE, testEnv, uniq } from '../helpers.js';
import { WorkerProcess } from '../chaos/harness.js';
import { makeCheckout, pathWithUv, startHub, type Checkout } from './nemo-rl.js';

export class NemoRlStack {
  env!: TestWorkflowEnvironment;
  checkout!: Checkout;
  hub!: Awaited<ReturnType<typeof startHub>>;
  state!: string;
  readonly taskQueue: string;
  private readonly workers: WorkerProcess[] = [];

  constructor(private readonly prefix: string) {
    this.taskQueue = uniq(prefix);
  }

  async setup(): Promise<void> {
    this.env = await testEnv();
    this.checkout = makeCheckout({ train: 12, validation: 6 });
    this.hub = await startHub();
    // Runs of their own; the Hugging Face cache stays in the checkout; the built environments are shared.
    this.state = mkdtempSync(join(tmpdir(), `${this.prefix}-state-`));
    mkdirSync(join(STATE, 'envs'), { recursive: true });
    symlinkSync(join(STATE, 'envs'), join(this.state, 'envs'));
  }

  async teardown(): Promise<void> {
    await this.stopWorkers();
    this.hub.stop();
    this.checkout.remove();
    await this.env.teardown();
    if (!process.env.GRPO_KEEP_TEST_STATE) rmSync(this.state, { recursive: true, force: true });
  }

  /** Each test's faults live in its worker's environment: a worker of an earlier test must not take its runs. */
  async stopWorkers(): Promise<void> {
    for (const w of this.workers) await w.stop().catch(() => undefined);
  }

  startWorker(extra: NodeJS.ProcessEnv = {}): WorkerProcess {
    const w = new WorkerProcess(
      {
        TEMPORAL_ADDRESS: this.env.connection.options.address,
        GRPO_STATE_DIR: this.state,
        GRPO_TASK_QUEUE: this.taskQueue,
        GRPO_LOG_FORMAT: 'json',
        PATH: pathWithUv(),
        HF_ENDPOINT: this.hub.endpoint,
        HF_TOKEN: '',
        FAKE_NRL_STEP_SECONDS: '0.3',
        ...extra,
      },
      join(this.state, `worker-${this.workers.length}.log`),
    );
    w.start();
    this.workers.push(w);
    return w;
  }
}
