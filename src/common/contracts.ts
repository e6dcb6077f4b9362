/**
 * Facts the pipeline and the Python trainer share live once, as data files in contracts/ (see its
 * README): each side reads them instead of writing its own copy.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './state.js';

export const CONTRACTS_DIR = join(REPO_ROOT, 'contracts');

export function loadContract<T>(name: string): T {
  return JSON.parse(readFileSync(join(CONTRACTS_DIR, name), 'utf8')) as T;
}
