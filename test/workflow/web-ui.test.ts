/**
 * The Web UI link the quickstart (and `grpo run` / `grpo status`) prints answers: a dev server
 * started the way the quickstart starts it (with its UI, free ports), a run on it, the link
 * `grpo status` prints, fetched. Without a UI known to be there, no link is printed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { serverTarget } from '../../src/common/connection.js';
import { freeLocalPort } from '../../src/server/index.js';
import { startDevServerWithUi, webUiLine } from '../../src/server/ui.js';
import { cli, uniq } from '../helpers.js';

let state: string;
let server: ChildProcess;
let address: string;
let uiUrl: string;

before(async () => {
  state = mkdtempSync(join(tmpdir(), 'grpo-ui-'));
  const port = await freeLocalPort();
  let uiPort = await freeLocalPort();
  while (uiPort === port) uiPort = await freeLocalPort();
  ({ child: server, uiUrl } = await startDevServerWithUi({ state, ip: '127.0.0.1', port, uiPort, dbFile: null, stdio: { logFile: join(state, 'server.log') } }));
  address = `127.0.0.1:${port}`;
});
after(async () => {
  if (server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  rmSync(state, { recursive: true, force: true });
});

test('the Web UI link printed for a run answers', { timeout: 180_000 }, async () => {
  const connection = await Connection.connect({ address });
  const id = uniq('ui-run');
  try {
    // A run nobody works on: the UI shows it all the same.
    await new Client({ connection }).workflow.start('trainingRun', { taskQueue: uniq('ui-queue'), workflowId: id, args: [{}] });
  } finally {
    await connection.close();
  }
  const expected = `${uiUrl}/namespaces/default/workflows/${id}`;
  // What the quickstart prints after starting its run.
  assert.equal(await webUiLine(serverTarget({ TEMPORAL_ADDRESS: address, HOME: state }), state, id), `Web UI: ${expected}`);
  // What `grpo status` prints.
  const st = await cli(['status', id], { env: { TEMPORAL_ADDRESS: address, GRPO_STATE_DIR: state } });
  assert.equal(st.code, 0, st.out);
  const link = /Web UI: (\S+)/.exec(st.stdout)?.[1];
  assert.equal(link, expected, st.out);
  const res = await fetch(link!);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  assert.match(await res.text(), /<html/i);
});

test('no link where no UI is known: another server, or the dev server stopped', { timeout: 60_000 }, async () => {
  assert.equal(await webUiLine(serverTarget({ TEMPORAL_ADDRESS: '127.0.0.1:1', HOME: state }), state, 'x'), null);
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  assert.equal(await webUiLine(serverTarget({ TEMPORAL_ADDRESS: address, HOME: state }), state, 'x'), null);
  assert.ok(!existsSync(join(state, 'temporal', 'ui.json')), 'the record goes with the server');
  // An explicit UI, for any server.
  assert.equal(await webUiLine(serverTarget({ TEMPORAL_ADDRESS: '10.0.0.5:7233', HOME: state }), state, 'r1'), null);
  process.env.GRPO_TEMPORAL_UI_URL = 'https://temporal-ui.example.com/';
  try {
    assert.equal(await webUiLine(serverTarget({ TEMPORAL_ADDRESS: '10.0.0.5:7233', TEMPORAL_NAMESPACE: 'ml', HOME: state }), state, 'r1'), 'Web UI: https://temporal-ui.example.com/namespaces/ml/workflows/r1');
  } finally {
    delete process.env.GRPO_TEMPORAL_UI_URL;
  }
});
