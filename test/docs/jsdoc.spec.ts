/**
 * Every public export of src/index.ts has JSDoc with an `@example` holding a ```ts code block, so
 * the API reference (TypeDoc) cannot lose its examples. Walks the exports with the TypeScript
 * compiler API: for a re-export, the JSDoc is that of the declaration it names, or, for a
 * declaration in a file the docs owners do not edit, a JSDoc on the export statement in
 * src/index.ts itself.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const entry = fileURLToPath(new URL('../../src/index.ts', import.meta.url));

/** The text of a JSDoc tag comment (a string, or a list of text and link parts). */
function tagText(tag: ts.JSDocTag): string {
  const c = tag.comment;
  if (c === undefined) return '';
  return typeof c === 'string' ? c : c.map((part) => part.text).join('');
}

/** The JSDoc nodes attached to a declaration (for a variable, to its statement). */
function jsDocsOf(node: ts.Node): readonly ts.JSDoc[] {
  const target = ts.isVariableDeclaration(node) ? node.parent.parent : node;
  return ts.getJSDocCommentsAndTags(target).filter((d): d is ts.JSDoc => ts.isJSDoc(d));
}

/** Whether one of these JSDoc comments has a description and an @example with a ```ts block. */
function hasExample(docs: readonly ts.JSDoc[]): boolean {
  return docs.some((doc) => {
    const described = typeof doc.comment === 'string' ? doc.comment.trim() !== '' : (doc.comment?.length ?? 0) > 0;
    const example = (doc.tags ?? []).some((t) => t.tagName.text === 'example' && /```ts\b[\s\S]*\S[\s\S]*```/.test(tagText(t)));
    return described && example;
  });
}

/** The exports of src/index.ts and, for each, whether it is documented with an example. */
function exportsOfIndex(): { name: string; ok: boolean; where: string }[] {
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(entry);
  assert.ok(file, 'src/index.ts is in the program');
  const moduleSymbol = checker.getSymbolAtLocation(file!);
  assert.ok(moduleSymbol, 'src/index.ts is a module');
  return checker.getExportsOfModule(moduleSymbol!).map((sym) => {
    // The export statement in index.ts (for `export { a } from`, the specifier's declaration).
    const local = (sym.declarations ?? []).flatMap((d) => (ts.isExportSpecifier(d) ? [d.parent.parent] : [d]));
    const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
    const decls = target.declarations ?? [];
    const ok = hasExample([...decls, ...local].flatMap(jsDocsOf));
    const where = decls.map((d) => `${d.getSourceFile().fileName.replace(/^.*\/src\//, 'src/')}`).join(', ');
    return { name: sym.name, ok, where };
  });
}

test('every public export of src/index.ts has JSDoc with an @example in a ```ts block', () => {
  const all = exportsOfIndex();
  assert.ok(all.length >= 40, `found only ${all.length} exports: the walk is broken`);
  const missing = all.filter((e) => !e.ok).map((e) => `${e.name} (${e.where})`);
  assert.equal(missing, [], `exports without JSDoc + @example:\n  ${missing.join('\n  ')}`);
});

test('the check itself: a declaration without an example is caught', () => {
  const src = ts.createSourceFile(
    'x.ts',
    '/** Described. */\nexport function a() {}\n/**\n * Described.\n * @example\n * ```ts\n * b();\n * ```\n */\nexport function b() {}\n',
    ts.ScriptTarget.ES2022,
    true,
  );
  const [a, b] = src.statements;
  assert.is(hasExample(jsDocsOf(a!)), false);
  assert.is(hasExample(jsDocsOf(b!)), true);
});

test.run();
