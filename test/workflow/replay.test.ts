/** Determinism: replay a recorded `trainingRun` history (test/fixtures) against the current workflow code. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { ROOT, quietRuntime } from '../helpers.js';
import { WORKFLOWS_PATH } from '../../src/worker/index.js';

const fixture = join(ROOT, 'test', 'fixtures', 'trainingRun-history.json');
/** Recorded by the release before failure recovery moved into the workflow: upgrades must replay it. */
const fixtureBeforeRecovery = join(ROOT, 'test', 'fixtures', 'trainingRun-history-before-recovery.json');

for (const [name, file, timers] of [
  ['the recorded history', fixture, true],
  ['a history recorded before workflow-level recovery', fixtureBeforeRecovery, false],
] as const) {
  test(`${name} replays without nondeterminism`, async () => {
    quietRuntime();
    const history = JSON.parse(readFileSync(file, 'utf8'));
    const types = (history.events as { eventType: string }[]).map((e) => e.eventType);
    assert.ok(types.includes('EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED'), 'history has progress signals');
    assert.ok(types.filter((t) => t === 'EVENT_TYPE_ACTIVITY_TASK_COMPLETED').length >= 8, 'history covers the stages');
    if (timers) assert.ok(types.includes('EVENT_TYPE_TIMER_FIRED'), 'history has a recovery backoff timer');
    assert.equal(types.at(-1), 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');
    const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never });
    await Worker.runReplayHistory({ workflowBundle }, historyFromJSON(history), 'replay-fixture');
  });
}

test('a workflow change that reorders activities is caught by the replay', async () => {
  quietRuntime();
  const history = JSON.parse(readFileSync(fixture, 'utf8'));
  // Tamper with the history instead of the code: swap the first activity's type.
  const ev = (history.events as { activityTaskScheduledEventAttributes?: { activityType: { name: string } } }[]).find((e) => e.activityTaskScheduledEventAttributes);
  ev!.activityTaskScheduledEventAttributes!.activityType.name = 'prepareData';
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never });
  await assert.rejects(Worker.runReplayHistory({ workflowBundle }, historyFromJSON(history), 'replay-fixture'), /Nondeterminism|DeterminismViolation|ReplayError/i);
});
