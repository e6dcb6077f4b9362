/**
 * Where the Temporal server is, by the scheme the `temporal` CLI and every Temporal SDK share
 * (`@temporalio/envconfig`): a profile of a temporal.toml file (TEMPORAL_CONFIG_FILE, default
 * ~/.config/temporalio/temporal.toml; TEMPORAL_PROFILE, default "default"), overridden by the
 * standard variables TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS,
 * TEMPORAL_TLS_CLIENT_CERT_PATH / _DATA, TEMPORAL_TLS_CLIENT_KEY_PATH / _DATA,
 * TEMPORAL_TLS_SERVER_CA_CERT_PATH / _DATA, TEMPORAL_TLS_SERVER_NAME and TEMPORAL_GRPC_META_*.
 * Nothing configured: the local dev server, 127.0.0.1:7233, namespace "default".
 */
import { loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/client';

export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_NAMESPACE = 'default';

export interface ServerTarget {
  address: string;
  namespace: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
  /** The temporal.toml profile asked for (TEMPORAL_PROFILE), if any. */
  profile?: string;
  isLocal: boolean;
}

/** Settings that cannot be used (a profile that is not there, a cert without its key, a variable we no longer read). */
export class ConnectionConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectionConfigError';
  }
}

/** This pipeline's own TLS variables before it took the standard scheme: refused, naming the replacement. */
const RETIRED: Record<string, string> = {
  TEMPORAL_TLS_CERT: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
  TEMPORAL_TLS_KEY: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
  TEMPORAL_TLS_CA: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
};

const LOCAL_HOSTS = ['127.0.0.1', 'localhost', '::1', '[::1]'];

function loadProfile(vars: Record<string, string>) {
  try {
    return loadClientConfigProfile({ overrideEnvVars: vars });
  } catch (e) {
    // envconfig 1.24 trips over a config file without any [profile.*] table (an empty file): that is no profile at all.
    if (!(e instanceof TypeError && /reading '/.test(e.message))) throw e;
    if (vars.TEMPORAL_PROFILE) throw new Error(`Profile '${vars.TEMPORAL_PROFILE}' not found in config data (the file has no [profile.*] table)`, { cause: e });
    return loadClientConfigProfile({ overrideEnvVars: vars, disableFile: true });
  }
}

export function serverTarget(env: NodeJS.ProcessEnv = process.env): ServerTarget {
  for (const [old, now] of Object.entries(RETIRED))
    if (env[old]) throw new ConnectionConfigError(`${old} is no longer read; set ${now} (the variable the temporal CLI and SDKs use) instead`);
  // An empty variable counts as unset (as it did here before); TEMPORAL_GRPC_META_X= still removes a header.
  const vars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && (e[1] !== '' || e[0].startsWith('TEMPORAL_GRPC_META_'))));
  let loaded: ReturnType<typeof toClientOptions>;
  try {
    const profile = loadProfile(vars);
    const tls = profile.tls;
    if (tls && !tls.disabled && !!tls.clientCert !== !!tls.clientKey)
      throw new Error('a TLS client certificate needs its key and the key its certificate (TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH, or client_cert_path and client_key_path in the profile)');
    loaded = toClientOptions(profile);
  } catch (e) {
    const where = vars.TEMPORAL_CONFIG_FILE ? ` (config file ${vars.TEMPORAL_CONFIG_FILE}${vars.TEMPORAL_PROFILE ? `, profile ${vars.TEMPORAL_PROFILE}` : ''})` : vars.TEMPORAL_PROFILE ? ` (profile ${vars.TEMPORAL_PROFILE})` : '';
    throw new ConnectionConfigError(`Temporal connection settings${where}: ${(e as Error).message}`, { cause: e });
  }
  const o = loaded.connectionOptions;
  const address = o.address || DEFAULT_ADDRESS;
  const host = address.startsWith('[') ? address.slice(0, address.indexOf(']') + 1) : (address.split(':')[0] ?? '');
  const apiKey = typeof o.apiKey === 'string' && o.apiKey ? o.apiKey : undefined;
  return {
    address,
    namespace: loaded.namespace || DEFAULT_NAMESPACE,
    ...(o.tls !== undefined && o.tls !== null ? { tls: o.tls } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(o.metadata && Object.keys(o.metadata).length ? { metadata: o.metadata as Record<string, string> } : {}),
    ...(vars.TEMPORAL_PROFILE ? { profile: vars.TEMPORAL_PROFILE } : {}),
    isLocal: LOCAL_HOSTS.includes(host),
  };
}

/** Options for Connection.connect (CLI) and NativeConnection.connect (worker). */
export function connectionOptions(t: ServerTarget) {
  return {
    address: t.address,
    ...(t.tls !== undefined ? { tls: t.tls } : {}),
    ...(t.apiKey ? { apiKey: t.apiKey } : {}),
    ...(t.metadata ? { metadata: t.metadata } : {}),
    connectTimeout: '5s' as const,
  };
}

const SETTINGS = 'TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, a temporal.toml profile (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE), TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH / TEMPORAL_TLS_SERVER_CA_CERT_PATH or TEMPORAL_API_KEY';

export function unreachableMessage(t: ServerTarget, err: unknown): string {
  const why = (err as Error)?.message?.split('\n')[0] ?? String(err);
  const lines = [`Cannot reach the Temporal server at ${t.address} (namespace ${t.namespace}${t.profile ? `, profile ${t.profile}` : ''}): ${why}`];
  if (t.isLocal)
    lines.push(
      'Start a local dev server in another terminal with:  npm run grpo -- server',
      '(or run everything at once with: npm run quickstart).',
      `To use another cluster, set ${SETTINGS}.`,
    );
  else lines.push(`Check the connection settings: ${SETTINGS}.`);
  return lines.join('\n');
}
