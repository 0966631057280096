import type { OpDef } from '../op.js';

export const specialOps: readonly OpDef[] = [];
