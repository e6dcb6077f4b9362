/**
 * Registering the run search attributes on a namespace (once per namespace; a dev server starts
 * without them). Where the caller may not add them (e.g. Temporal Cloud without admin rights) the
 * runs go on without attributes and the reason is reported.
 */
import type { ConnectionLike } from '@temporalio/client';
// Not re-exported from the package root in 1.24; the enum's own encoder keeps us off its numbers.
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';
import { RUN_ATTRIBUTE_TYPES } from './attributes.js';

export interface AttributesReady {
  ready: boolean;
  /** What was done, or why the attributes are not available. */
  detail: string;
}

async function missing(connection: ConnectionLike, namespace: string): Promise<string[]> {
  const r = await connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(r.customAttributes ?? {}));
  return Object.keys(RUN_ATTRIBUTE_TYPES).filter((n) => !have.has(n));
}

export async function ensureRunAttributes(connection: ConnectionLike, namespace: string, waitMs = 15_000): Promise<AttributesReady> {
  try {
    const absent = await missing(connection, namespace);
    if (!absent.length) return { ready: true, detail: 'registered' };
    const searchAttributes = Object.fromEntries(absent.map((n) => [n, encodeSearchAttributeIndexedValueType(RUN_ATTRIBUTE_TYPES[n]!)!]));
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
    // The server applies them asynchronously: use them only once they are listed.
    for (const until = Date.now() + waitMs; Date.now() < until; await new Promise((r) => setTimeout(r, 250)))
      if (!(await missing(connection, namespace)).length) return { ready: true, detail: `added ${absent.join(', ')}` };
    return { ready: false, detail: `added ${absent.join(', ')} but the server did not list them within ${waitMs / 1000}s` };
  } catch (e) {
    return { ready: false, detail: `cannot register search attributes on namespace ${namespace}: ${(e as Error).message.split('\n')[0]}` };
  }
}
