import type { z } from 'zod';
import { TetherError } from '@tether/protocol';
import { checkShape } from '@tether/protocol';

/** Refuses a payload nested too deep (or carrying `__proto__` keys) before any recursive code sees it. */
export function assertShape(payload: unknown): void {
  const problem = checkShape(payload);
  if (problem) throw new TetherError('INVALID_PAYLOAD', `invalid payload: ${problem.path}: ${problem.message}`, [problem]);
}

/** Turns a zod failure into INVALID_PAYLOAD with field-level details. */
export function invalidPayload(error: z.ZodError): TetherError {
  const details = error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
  return new TetherError('INVALID_PAYLOAD', `invalid payload: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
}
