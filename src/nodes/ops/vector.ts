import type { OpDef } from '../op.js';

export const vectorOps: readonly OpDef[] = [];
