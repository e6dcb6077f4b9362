/**
 * Connection settings by the scheme the temporal CLI and the SDKs share (@temporalio/envconfig):
 * a temporal.toml profile (TEMPORAL_CONFIG_FILE + TEMPORAL_PROFILE) and the standard TEMPORAL_*
 * variables reach the client connection options; nothing configured is the local dev server.
 * With a dev server (GRPO_TEST_TEMPORAL_ADDRESS), the CLI and the worker connect through a profile.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { ConnectionConfigError, connectionOptions, serverTarget } from '../../src/common/connection.js';
import { pollerCount } from '../../src/cli/client.js';
import { GRPO_BIN, workerSpawnEnv } from '../../src/worker/paths.js';
import { cli, uniq } from '../helpers.js';

let dir: string;
let files: { cert: string; key: string; ca: string };
/** An environment with no config file of the user's (HOME is an empty dir). */
const bare = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ HOME: dir, ...extra });

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'grpo-conn-'));
  files = { cert: join(dir, 'client.pem'), key: join(dir, 'client.key'), ca: join(dir, 'ca.pem') };
  writeFileSync(files.cert, 'CLIENT CERT');
  writeFileSync(files.key, 'CLIENT KEY');
  writeFileSync(files.ca, 'SERVER CA');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function toml(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const text = (b: unknown) => Buffer.from(b as Uint8Array).toString();

test('nothing configured: the local dev server, namespace default, no TLS', () => {
  const t = serverTarget(bare());
  assert.equal(t.address, '127.0.0.1:7233');
  assert.equal(t.namespace, 'default');
  assert.equal(t.isLocal, true);
  assert.deepEqual(connectionOptions(t), { address: '127.0.0.1:7233', connectTimeout: '5s' });
  // an empty variable counts as unset
  assert.equal(serverTarget(bare({ TEMPORAL_ADDRESS: '', TEMPORAL_NAMESPACE: '' })).address, '127.0.0.1:7233');
});

test('a temporal.toml profile (TEMPORAL_CONFIG_FILE + TEMPORAL_PROFILE) reaches the connection options; variables override it', () => {
  const file = toml(
    'temporal.toml',
    [
      '[profile.default]',
      'address = "127.0.0.1:7999"',
      '',
      '[profile.prod]',
      'address = "prod.example.com:7233"',
      'namespace = "training"',
      '[profile.prod.tls]',
      `client_cert_path = "${files.cert}"`,
      `client_key_path = "${files.key}"`,
      `server_ca_cert_path = "${files.ca}"`,
      'server_name = "prod.internal"',
      '[profile.prod.grpc_meta]',
      'x-team = "rl"',
      '',
      '[profile.cloud]',
      'address = "ns.acct.tmprl.cloud:7233"',
      'namespace = "ns.acct"',
      'api_key = "cloud-key-1234"',
    ].join('\n'),
  );
  const prod = serverTarget(bare({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' }));
  assert.equal(prod.isLocal, false);
  assert.equal(prod.profile, 'prod');
  const o = connectionOptions(prod);
  assert.equal(o.address, 'prod.example.com:7233');
  assert.equal(prod.namespace, 'training');
  assert.deepEqual(o.metadata, { 'x-team': 'rl' });
  const tls = o.tls as { clientCertPair: { crt: Uint8Array; key: Uint8Array }; serverRootCACertificate: Uint8Array; serverNameOverride: string };
  assert.equal(text(tls.clientCertPair.crt), 'CLIENT CERT');
  assert.equal(text(tls.clientCertPair.key), 'CLIENT KEY');
  assert.equal(text(tls.serverRootCACertificate), 'SERVER CA');
  assert.equal(tls.serverNameOverride, 'prod.internal');
  // Without TEMPORAL_PROFILE: the default profile.
  assert.equal(serverTarget(bare({ TEMPORAL_CONFIG_FILE: file })).address, '127.0.0.1:7999');
  // The standard variables win over the profile.
  const over = serverTarget(bare({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod', TEMPORAL_NAMESPACE: 'other', TEMPORAL_ADDRESS: 'x.example.com:7233' }));
  assert.equal(over.namespace, 'other');
  assert.equal(over.address, 'x.example.com:7233');
  // Temporal Cloud with an API key: TLS on, the key sent.
  const cloud = connectionOptions(serverTarget(bare({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud' })));
  assert.equal(cloud.apiKey, 'cloud-key-1234');
  assert.equal(cloud.tls, true);
  // The default file location (~/.config/temporalio/temporal.toml) without TEMPORAL_CONFIG_FILE.
  const home = mkdtempSync(join(dir, 'home-'));
  const cfg = join(home, '.config', 'temporalio');
  mkdirSync(cfg, { recursive: true });
  writeFileSync(join(cfg, 'temporal.toml'), '[profile.default]\naddress = "127.0.0.1:7555"\nnamespace = "home"\n');
  const fromHome = serverTarget({ HOME: home });
  assert.deepEqual([fromHome.address, fromHome.namespace], ['127.0.0.1:7555', 'home']);
});

test('the standard TLS variables (paths, data, server name) and TEMPORAL_API_KEY reach the connection options', () => {
  const paths = connectionOptions(
    serverTarget(
      bare({
        TEMPORAL_ADDRESS: 'temporal.example.com:7233',
        TEMPORAL_TLS_CLIENT_CERT_PATH: files.cert,
        TEMPORAL_TLS_CLIENT_KEY_PATH: files.key,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: files.ca,
        TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      }),
    ),
  );
  const tls = paths.tls as { clientCertPair: { crt: Uint8Array; key: Uint8Array }; serverRootCACertificate: Uint8Array; serverNameOverride: string };
  assert.equal(text(tls.clientCertPair.crt), 'CLIENT CERT');
  assert.equal(text(tls.clientCertPair.key), 'CLIENT KEY');
  assert.equal(text(tls.serverRootCACertificate), 'SERVER CA');
  assert.equal(tls.serverNameOverride, 'temporal.internal');
  const data = connectionOptions(serverTarget(bare({ TEMPORAL_TLS_CLIENT_CERT_DATA: 'CERT DATA', TEMPORAL_TLS_CLIENT_KEY_DATA: 'KEY DATA' })));
  const dtls = data.tls as { clientCertPair: { crt: Uint8Array; key: Uint8Array } };
  assert.deepEqual([text(dtls.clientCertPair.crt), text(dtls.clientCertPair.key)], ['CERT DATA', 'KEY DATA']);
  assert.deepEqual(connectionOptions(serverTarget(bare({ TEMPORAL_TLS: 'true' }))).tls, { serverNameOverride: undefined, serverRootCACertificate: undefined, clientCertPair: undefined });
  const key = connectionOptions(serverTarget(bare({ TEMPORAL_API_KEY: 'abcd1234' })));
  assert.equal(key.apiKey, 'abcd1234');
  assert.equal(key.tls, true);
});

test('unusable settings are refused with what to do: our retired variables, a cert without its key, a missing profile', async () => {
  assert.throws(() => serverTarget(bare({ TEMPORAL_TLS_CERT: files.cert })), (e: Error) => e instanceof ConnectionConfigError && /TEMPORAL_TLS_CLIENT_CERT_PATH/.test(e.message));
  assert.throws(() => serverTarget(bare({ TEMPORAL_TLS_CA: files.ca })), /TEMPORAL_TLS_SERVER_CA_CERT_PATH/);
  assert.throws(() => serverTarget(bare({ TEMPORAL_TLS_CLIENT_CERT_PATH: files.cert })), /needs its key/);
  const file = toml('one.toml', '[profile.default]\naddress = "127.0.0.1:7233"\n');
  assert.throws(() => serverTarget(bare({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'nope' })), /profile nope.*Profile 'nope' not found/);
  // A file without profiles (empty) is no profile: the defaults, unless a profile is asked for.
  const empty = toml('empty.toml', '');
  assert.equal(serverTarget(bare({ TEMPORAL_CONFIG_FILE: empty })).address, '127.0.0.1:7233');
  assert.throws(() => serverTarget(bare({ TEMPORAL_CONFIG_FILE: empty, TEMPORAL_PROFILE: 'prod' })), /Profile 'prod' not found/);
  // Through the CLI: a usage error (exit 2), no stack trace, before any connection.
  const r = await cli(['list'], { env: { TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'nope', TEMPORAL_ADDRESS: '' } });
  assert.equal(r.code, 2, r.out);
  assert.match(r.stderr, /Profile 'nope' not found/);
  assert.doesNotMatch(r.out, /\n\s+at /);
});

test('the CLI and the worker connect through a temporal.toml profile naming the dev server', { skip: !process.env.GRPO_TEST_TEMPORAL_ADDRESS, timeout: 180_000 }, async () => {
  const address = process.env.GRPO_TEST_TEMPORAL_ADDRESS!;
  const file = toml('dev.toml', `[profile.dev]\naddress = "${address}"\nnamespace = "default"\n\n[profile.closed]\naddress = "127.0.0.1:1"\nnamespace = "nowhere"\n`);
  const env = { TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'dev', TEMPORAL_ADDRESS: '', TEMPORAL_NAMESPACE: '', GRPO_STATE_DIR: join(dir, 'state') };
  const ok = await cli(['list', '--json'], { env });
  assert.equal(ok.code, 0, ok.out);
  assert.ok(Array.isArray(JSON.parse(ok.stdout)));
  const closed = await cli(['list'], { env: { ...env, TEMPORAL_PROFILE: 'closed' } });
  assert.equal(closed.code, 3, closed.out);
  assert.match(closed.stderr, /Cannot reach the Temporal server at 127\.0\.0\.1:1 \(namespace nowhere, profile closed\)/);
  // The worker: polls its task queue on the profile's server.
  const queue = uniq('conn-profile');
  const worker = spawn(GRPO_BIN, ['worker', '--task-queue', queue], { env: workerSpawnEnv({ ...process.env, ...env, GRPO_LOG_FORMAT: 'json' }), stdio: 'ignore' });
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection });
    const deadline = Date.now() + 120_000;
    while ((await pollerCount(client, 'default', queue)) <= 0) {
      assert.ok(Date.now() < deadline && worker.exitCode === null, 'the worker polls through the profile');
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
    await connection.close();
  }
});
