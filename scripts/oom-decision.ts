/**
 * What the pipeline's recovery does about one failed trainer attempt, outside a workflow: the same
 * functions the workflow calls (src/activities/failure.ts, src/workflows/recover.ts), on files.
 *
 *   node --import tsx scripts/oom-decision.ts --config configs/builtin-gpu.yaml --failure LOG_DIR/failure.json \
 *     [--log trainer.log] [--exit-code 1] [--override key=value ...] [--used N]
 *
 * Reads the trainer's failure.json the way the built-in backend does (parseFailure), classifies it
 * with the log tail (classifyFailure), reads the OOM knobs from the config plus the overrides of
 * earlier recoveries (oomKnobs) and asks the policy (decide) with `--used` retries of that type
 * already spent. Prints one JSON object: classification, knobs, action (its configChanges are the
 * overrides the next attempt runs with). Used by trainer/bench/oom_ladder_gpu.py (issue #15);
 * bundle it for a machine without the repo's node_modules with
 * `npx esbuild scripts/oom-decision.ts --bundle --platform=node --format=esm --outfile=OUT.mjs`.
 */
import { readFileSync } from 'node:fs';
import { getBackend } from '../src/backends/index.js';
import { loadConfigFile } from '../src/config/load.js';
import { classifyFailure } from '../src/failures/classifier.js';
import { DEFAULT_RECOVERY, decide, type RecoverySettings } from '../src/failures/policy.js';
import { oomKnobs } from '../src/workflows/recovery.js';

function args(argv: string[]): { config: string; failure: string; log: string | null; exitCode: number; overrides: string[]; used: number } {
  const out = { config: '', failure: '', log: null as string | null, exitCode: 1, overrides: [] as string[], used: 0 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    const need = () => {
      if (v === undefined) throw new Error(`${argv[i]} needs a value`);
      i++;
      return v;
    };
    switch (argv[i]) {
      case '--config': out.config = need(); break;
      case '--failure': out.failure = need(); break;
      case '--log': out.log = need(); break;
      case '--exit-code': out.exitCode = Number(need()); break;
      case '--override': out.overrides.push(need()); break;
      case '--used': out.used = Number(need()); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!out.config || !out.failure) throw new Error('--config and --failure are required');
  return out;
}

const a = args(process.argv.slice(2));
const { config: cfg } = loadConfigFile(a.config);
const backend = getBackend(cfg.backend);
const report = backend.parseFailure(readFileSync(a.failure, 'utf8'));
const logTail = a.log ? readFileSync(a.log, 'utf8').slice(-16000) : '';
const classification = classifyFailure({ report, exitCode: a.exitCode, signal: null, logTail });
const knobs = oomKnobs(cfg, a.overrides);
const action = decide({
  type: classification.type,
  stage: 'train',
  used: a.used,
  settings: (cfg.recovery ?? DEFAULT_RECOVERY) as RecoverySettings,
  retryAfterSeconds: classification.retryAfterSeconds,
  oom: knobs,
  modelCached: true,
  random: 0.5,
});
console.log(JSON.stringify({ report: report ? { type: report.type, step: report.step, message: report.message.slice(0, 300) } : null, classification, knobs, action }, null, 2));
