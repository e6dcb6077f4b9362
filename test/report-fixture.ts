/** A finished run directory with everything the report reads (summary, metrics, evals, BFCL, checkpoints). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';

export interface FixtureOptions {
  /** Leave out the ledger (a summary written before the ledger existed). */
  noLedger?: boolean;
  /** An out-of-memory failure that the recovery policy gave up on. */
  unrecoveredOom?: boolean;
  /** The run had a warm start: eval/warm.json between baseline and final. */
  warm?: boolean;
}

/**
 * An evaluation file of `n` tasks (even ids email, odd calendar) where tasks 0..solved-1 score 1:
 * a later point solving more of the same tasks is a paired improvement with no regressions.
 */
export function evalFile(n: number, solved: number): { accuracy: number; num_tasks: number; per_category: Record<string, number>; results: { task_id: number; category: string; reward: number }[] } {
  const results = Array.from({ length: n }, (_, i) => ({ task_id: i, category: i % 2 ? 'workplace_assistant_calendar' : 'workplace_assistant_email', reward: i < solved ? 1 : 0 }));
  const per: Record<string, number[]> = {};
  for (const r of results) (per[r.category] ??= []).push(r.reward);
  const mean = (xs: number[]) => Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 1e4) / 1e4;
  return { accuracy: mean(results.map((r) => r.reward)), num_tasks: n, per_category: Object.fromEntries(Object.entries(per).map(([k, v]) => [k, mean(v)])), results };
}

export function writeRunFixture(runDir: string, opts: FixtureOptions = {}): void {
  mkdirSync(join(runDir, 'logs'), { recursive: true });
  mkdirSync(join(runDir, 'eval'), { recursive: true });
  const rewards = [0.1, 0.3, 0.2, 0.4, 0.35, 0.5, 0.45, 0.6, 0.55, 0.7, 0.62, 0.75];
  const lines: string[] = [];
  rewards.forEach((r, i) => {
    const step = i + 1;
    lines.push(JSON.stringify({ kind: 'train', step, 'train/reward': r, 'train/loss': 0.01 * step, 'timing/train/total_step_time': 30 + step, 'performance/generation_tokens_per_sec': 12.5 }));
    if (step % 4 === 0) lines.push(JSON.stringify({ kind: 'validation', step, 'validation/accuracy': 0.15 + step * 0.02, 'timing/validation/total_validation_time': 20 }));
  });
  writeFileSync(join(runDir, 'logs', 'metrics.jsonl'), lines.join('\n') + '\n');
  writeFileSync(
    join(runDir, 'logs', 'trainer.log'),
    [4, 8, 12].map((s) => `Saving checkpoint for step ${s}...\nSaved checkpoint ${runDir}/checkpoints/step_${s}`).join('\n') + '\nRemoving checkpoint step_4 (outside top-2 by val:accuracy)\n',
  );
  for (const s of [8, 12]) {
    mkdirSync(join(runDir, 'checkpoints', `step_${s}`), { recursive: true });
    writeFileSync(join(runDir, 'checkpoints', `step_${s}`, 'training_info.json'), JSON.stringify({ total_steps: s, 'val:accuracy': 0.15 + s * 0.02 }));
  }
  writeFileSync(join(runDir, 'eval', 'baseline.json'), JSON.stringify(evalFile(40, 8)));
  if (opts.warm) writeFileSync(join(runDir, 'eval', 'warm.json'), JSON.stringify(evalFile(40, 12)));
  writeFileSync(join(runDir, 'eval', 'final.json'), JSON.stringify(evalFile(40, 16)));
  const bfclPoints: [string, number][] = opts.warm ? [['baseline', 0.1], ['warm', 0.15], ['final', 0.25]] : [['baseline', 0.1], ['final', 0.25]];
  for (const [which, acc] of bfclPoints) {
    mkdirSync(join(runDir, 'bfcl', which), { recursive: true });
    const cat = (a: number, total: number, prefix: string) => ({ accuracy: a, correct: Math.round(a * total), total, ids: Array.from({ length: total }, (_, i) => `${prefix}_${i * 10}`) });
    writeFileSync(
      join(runDir, 'bfcl', which, 'bfcl.json'),
      JSON.stringify({
        package: 'bfcl-eval',
        version: '2025.8.5',
        data_version: 'BFCL_v3',
        label: which,
        mode: 'prompt (our chat template and <tool_call> format; bfcl-eval generation loop and checkers)',
        categories: { simple: cat(acc, 20, 'simple'), multiple: cat(acc, 20, 'multiple'), parallel: cat(0, 20, 'parallel'), multi_turn_base: cat(0, 5, 'multi_turn_base') },
        overall: { accuracy: acc / 2, correct: Math.round(acc * 40), total: 65 },
        settings: { limit: 20, temperature: 0.001, greedy: true, max_tokens: 128, prefill_tool_call: true },
        timings: { total_s: 200, generate_s: 180, evaluate_s: 2 },
      }),
    );
  }
  writeFileSync(
    join(runDir, 'config.resolved.yaml'),
    toYaml({ backend: 'builtin', bfcl: { enabled: true }, trainer: { grpo: { max_num_steps: 12, val_period: 4 }, checkpointing: { metric_name: 'val:accuracy', keep_top_k: 2, save_period: 4 } } }),
  );
  const ledger = opts.unrecoveredOom
    ? [{ time: '2026-11-26T10:05:00Z', stage: 'train', attempt: 2, type: 'OutOfMemory', rule: 'oom', action: 'gave up: micro batch already at its minimum', configChanges: [], stepAtFailure: 7, resumedFromStep: null, stepsLost: 3, timeLostSeconds: 95, recoverySeconds: null, message: 'CUDA out of memory' }]
    : [{ time: '2026-11-26T10:05:00Z', stage: 'train', attempt: 1, type: 'OutOfMemory', rule: 'oom', action: 'halved policy.train_micro_batch_size 4 -> 2', configChanges: ['trainer.policy.train_micro_batch_size=2'], stepAtFailure: 7, resumedFromStep: 4, stepsLost: 3, timeLostSeconds: 95, recoverySeconds: 41, message: 'DefaultCPUAllocator: can\'t allocate memory' }];
  const summary: Record<string, unknown> = {
    runId: 'fixture-run',
    state: opts.unrecoveredOom ? 'failed' : 'completed',
    backend: 'builtin',
    configSource: 'configs/builtin-cpu.yaml',
    steps: { completed: 12, total: 12 },
    baselineAccuracy: 0.2,
    finalAccuracy: 0.4,
    finalModel: `${runDir}/checkpoints/step_12`,
    checkpoints: [8, 12].map((s) => ({ step: s, dir: `${runDir}/checkpoints/step_${s}`, metric: 0.15 + s * 0.02 })),
    best: { step: 12, dir: `${runDir}/checkpoints/step_12`, metric: 0.39 },
    metricName: 'val:accuracy',
    latestTrain: { 'train/reward': 0.75 },
    latestValidation: {},
    failures: [{ stage: 'train', attempt: 1, type: 'OutOfMemory', message: 'out of memory', step: 7, time: '2026-11-26T10:05:00Z' }],
    recoveries: opts.unrecoveredOom ? 0 : 1,
    configChanges: opts.unrecoveredOom ? [] : ['trainer.policy.train_micro_batch_size=2'],
    warnings: [],
    startedAt: '2026-11-26T10:00:00Z',
    finishedAt: '2026-11-26T10:12:00Z',
    elapsedSeconds: 720,
    runDir,
  };
  if (!opts.noLedger) summary.ledger = ledger;
  writeFileSync(join(runDir, 'summary.json'), JSON.stringify(summary, null, 2));
  writeFileSync(join(runDir, 'summary.txt'), 'GRPO run fixture-run: completed\nResults: ' + runDir + '\n');
}
