/** The tokens of KeOps formula strings and alias declarations. */
import { ParseError } from '../errors.js';

export interface Tok {
  readonly kind: 'num' | 'id' | 'sym' | 'eof';
  readonly text: string;
  readonly col: number;
  readonly value: number;
}

const NUM = /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/y;
const ID = /[A-Za-z_]\w*/y;
const SYMS = '()+-*/|,=';

/** Splits a formula or alias string into tokens (1-based columns), ending with an `eof` token. */
export function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const col = i + 1;
    NUM.lastIndex = i;
    ID.lastIndex = i;
    const num = NUM.exec(src);
    const id = num === null ? ID.exec(src) : null;
    if (num !== null) {
      const end = i + num[0].length;
      // `1e`, `2x`, `1.2.3`: report the whole run rather than a confusing token after it.
      if (/[\w.]/.test(src[end] ?? '')) {
        const run = /[\w.]*/y;
        run.lastIndex = end;
        throw new ParseError(`malformed number '${num[0]}${run.exec(src)?.[0] ?? ''}'`, src, col);
      }
      toks.push({ kind: 'num', text: num[0], col, value: Number(num[0]) });
      i = end;
    } else if (id !== null) {
      toks.push({ kind: 'id', text: id[0], col, value: NaN });
      i += id[0].length;
    } else if (SYMS.includes(ch)) {
      toks.push({ kind: 'sym', text: ch, col, value: NaN });
      i++;
    } else {
      const hint = ch === '^' ? " (KeOps formulas have no '^': use Pow(f, n), Square(f) or Powf(f, g))" : '';
      throw new ParseError(`unexpected character '${ch}'${hint}`, src, col);
    }
  }
  toks.push({ kind: 'eof', text: '', col: src.length + 1, value: NaN });
  return toks;
}

export const isSym = (t: Tok, s: string): boolean => t.kind === 'sym' && t.text === s;
export const show = (t: Tok): string => (t.kind === 'eof' ? 'end of input' : `'${t.text}'`);
