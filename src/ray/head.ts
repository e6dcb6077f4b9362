/**
 * The single-node Ray head the pipeline starts for a run, and how its clients reach it.
 *
 * The head runs with token authentication and on loopback only (docs/security.md):
 * - a fresh random token per head, in a file only the worker's user can read, handed to the head,
 *   the trainer and Ray Train's workers as RAY_AUTH_TOKEN_PATH (a path: NeMo RL and Ray copy the
 *   driver's environment into the cluster's job config, so the value itself never travels);
 * - `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` makes Ray take 127.0.0.1 as the node address, so every
 *   server it starts binds to loopback (`--node-ip-address=127.0.0.1` alone is rewritten by
 *   `ray start` to the machine's external address).
 * The flags and variables live in contracts/ray-head.json, which the trainer's
 * own test helper reads too.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadContract } from '../common/contracts.js';
import type { RayInfo } from '../common/types.js';

interface HeadSettings {
  flags: string[];
  port_flags: string[];
  env: Record<string, string>;
  token_path_env: string;
}

export const RAY_HEAD = loadContract<HeadSettings>('ray-head.json');

/** Where a run's Ray token lives: under its run dir, in a directory only the owner can enter. */
export function rayTokenPath(runDir: string): string {
  return join(runDir, 'secrets', 'ray-auth-token');
}

/** A fresh random token (256 bits), written owner-only and atomically. Never returned or logged. */
export async function writeRayToken(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await chmod(dirname(path), 0o700);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'w' });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

export async function removeRayToken(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** `ray start` for the run's head: fixed flags, its temp dir, resources, and one free port per server. */
export function headArgv(rayBin: string, o: { ports: Array<number | string>; tempDir: string; numCpus: number; numGpus: number }): string[] {
  if (o.ports.length !== RAY_HEAD.port_flags.length) throw new Error(`headArgv: ${RAY_HEAD.port_flags.length} ports needed, got ${o.ports.length}`);
  return [
    rayBin, 'start', ...RAY_HEAD.flags, `--temp-dir=${o.tempDir}`, `--num-cpus=${o.numCpus}`, `--num-gpus=${o.numGpus}`,
    ...RAY_HEAD.port_flags.map((f, i) => `--${f}=${o.ports[i]}`),
  ];
}

/** Environment of the head and of every client of a pipeline-started cluster (no secret values). */
export function headEnv(tokenPath: string): Record<string, string> {
  return { ...RAY_HEAD.env, [RAY_HEAD.token_path_env]: tokenPath };
}

/** Names a user sets in the worker's environment to reach a cluster the pipeline did not start. */
export const USER_RAY_TOKEN_ENV = 'RAY_AUTH_TOKEN';

/**
 * What a client of `ray` needs in its environment: the pipeline's own token file for a head it
 * started; for a user's cluster, token auth on when the worker has the user's token (the value
 * itself is passed through as a secret, `passEnv`).
 */
export function clusterClientEnv(ray: RayInfo, workerEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (!ray.external) return ray.authTokenPath ? headEnv(ray.authTokenPath) : {};
  const env: Record<string, string> = {};
  if (workerEnv[RAY_HEAD.token_path_env]) env[RAY_HEAD.token_path_env] = workerEnv[RAY_HEAD.token_path_env]!;
  if (workerEnv[RAY_HEAD.token_path_env] || workerEnv[USER_RAY_TOKEN_ENV]) env.RAY_AUTH_MODE = 'token';
  return env;
}
