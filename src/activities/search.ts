/** Part of the validate stage: the run search attributes exist on the workflow's namespace (registered when missing). */
import { Context } from '@temporalio/activity';
import { ensureRunAttributes, type AttributesReady } from '../search/register.js';

export async function registerRunAttributes(): Promise<AttributesReady> {
  const ctx = Context.current();
  const r = await ensureRunAttributes(ctx.client.connection, ctx.info.namespace);
  if (!r.ready) ctx.log.warn('runs go without search attributes', { detail: r.detail });
  return r;
}
