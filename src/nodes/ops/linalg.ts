import type { OpDef } from '../op.js';

export const linalgOps: readonly OpDef[] = [];
