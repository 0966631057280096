export * from './formula.js';
export * from './lower.js';
