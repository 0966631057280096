/**
 * Type-checks the type tests of test/types/*.ts (never run) with the compiler API, strict and with
 * noUncheckedIndexedAccess: a type that got looser makes an `@ts-expect-error` line unused, which
 * is an error too.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const here = fileURLToPath(new URL('.', import.meta.url));

test('test/types/*.ts type-check (strict, noUncheckedIndexedAccess): what must not compile does not', () => {
  const files = readdirSync(here)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))
    .map((f) => join(here, f));
  assert.ok(files.length > 0, 'type tests exist');
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    types: ['node'],
    strict: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const text = ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => here,
    getNewLine: () => '\n',
  });
  assert.is(diagnostics.length, 0, text);
});

test.run();
