/** Redaction of secrets from text that goes to logs, reports and histories. */
export const SECRET_ENV_NAMES = ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'WANDB_API_KEY', 'TEMPORAL_API_KEY', 'TEMPORAL_TLS_CLIENT_KEY_DATA', 'RAY_AUTH_TOKEN'];

const PATTERNS: RegExp[] = [/\bhf_[A-Za-z0-9]{8,}\b/g, /\bsk-[A-Za-z0-9_-]{8,}\b/g, /\bgh[pousr]_[A-Za-z0-9]{8,}\b/g];

export function redact(text: string, env: NodeJS.ProcessEnv = process.env): string {
  let out = text;
  for (const name of SECRET_ENV_NAMES) {
    const v = env[name];
    if (v && v.length >= 4) out = out.split(v).join('***');
  }
  for (const re of PATTERNS) out = out.replace(re, '***');
  return out;
}

/** Show an env var for plans: secrets as "<from worker env: set|unset>", never the value. */
export function showSecretEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return `${name}=<redacted; taken from the worker's environment${env[name] ? '' : ', currently unset'}>`;
}
