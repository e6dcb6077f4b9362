/**
 * Where the Temporal server is: TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE,
 * TLS (TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY / TEMPORAL_TLS_CA, TEMPORAL_TLS_SERVER_NAME) and
 * TEMPORAL_API_KEY for a self-hosted or Temporal Cloud cluster.
 */
import { readFileSync } from 'node:fs';

export interface ServerTarget {
  address: string;
  namespace: string;
  tls?: { clientCertPair?: { crt: Buffer; key: Buffer }; serverRootCACertificate?: Buffer; serverNameOverride?: string } | boolean;
  apiKey?: string;
  isLocal: boolean;
}

export function serverTarget(env: NodeJS.ProcessEnv = process.env): ServerTarget {
  const address = env.TEMPORAL_ADDRESS || '127.0.0.1:7233';
  const namespace = env.TEMPORAL_NAMESPACE || 'default';
  const cert = env.TEMPORAL_TLS_CERT;
  const key = env.TEMPORAL_TLS_KEY;
  const ca = env.TEMPORAL_TLS_CA;
  const apiKey = env.TEMPORAL_API_KEY || undefined;
  let tls: ServerTarget['tls'];
  if (cert || key || ca || env.TEMPORAL_TLS === 'true') {
    if ((cert && !key) || (key && !cert)) throw new Error('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together');
    tls = {
      ...(cert && key ? { clientCertPair: { crt: readFileSync(cert), key: readFileSync(key) } } : {}),
      ...(ca ? { serverRootCACertificate: readFileSync(ca) } : {}),
      ...(env.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME } : {}),
    };
  } else if (apiKey) tls = true;
  const host = address.split(':')[0] ?? '';
  return { address, namespace, ...(tls !== undefined ? { tls } : {}), ...(apiKey ? { apiKey } : {}), isLocal: ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host) };
}

export function connectionOptions(t: ServerTarget) {
  return { address: t.address, ...(t.tls !== undefined ? { tls: t.tls } : {}), ...(t.apiKey ? { apiKey: t.apiKey } : {}), connectTimeout: '5s' as const };
}

export function unreachableMessage(t: ServerTarget, err: unknown): string {
  const why = (err as Error)?.message?.split('\n')[0] ?? String(err);
  const lines = [`Cannot reach the Temporal server at ${t.address} (namespace ${t.namespace}): ${why}`];
  if (t.isLocal)
    lines.push(
      'Start a local dev server in another terminal with:  npm run grpo -- server',
      '(or run everything at once with: npm run quickstart).',
      'To use another cluster, set TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE (and TEMPORAL_TLS_CERT/KEY/CA or TEMPORAL_API_KEY).',
    );
  else lines.push('Check TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE and the TLS / API-key settings (TEMPORAL_TLS_CERT/KEY/CA, TEMPORAL_API_KEY).');
  return lines.join('\n');
}
