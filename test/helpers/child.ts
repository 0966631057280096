/**
 * The environment of a child process a test starts: the parent's, with `extra` on top and V8
 * coverage off. Children run under tsx's ESM loader (or from dist/), whose source maps differ
 * from the test runner's, so their coverage would land on the wrong lines of src/; Node copies
 * NODE_V8_COVERAGE into children unless their env sets it, and an empty value turns it off.
 */
export function childEnv(extra: NodeJS.ProcessEnv = {}, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, ...extra, NODE_V8_COVERAGE: '' };
}
