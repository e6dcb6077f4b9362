/**
 * `promoteModel` in a process of its own, for the promotion kill test (test/unit/promotion.test.ts):
 * node --import tsx test/support/promote-child.ts <input.json>; prints the decision as JSON.
 * The test sets GRPO_TEST_HOLD_BEFORE_POINTER_SWITCH_MS and SIGKILLs this process while it holds.
 */
import { readFileSync } from 'node:fs';
import { promoteModel, type PromoteModelInput } from '../../src/activities/promote.js';

const input = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as PromoteModelInput;
const decision = await promoteModel(input);
process.stdout.write(JSON.stringify(decision) + '\n');
