// Writes tests/fixtures/bpe/cases.json: strings and the GPT-2 token ids that js-tiktoken's "gpt2"
// encoding gives them. tests/unit/test_tokenizer.cpp checks that normgpt's GPT-2 tokenizer
// reproduces every id. Run once; the output is committed (Node is never a build or run dependency).
//
// Made with (js-tiktoken 1.0.21, Node 20):
//   mkdir -p /tmp/jstk && (cd /tmp/jstk && npm init -y >/dev/null && npm install js-tiktoken@1.0.21)
//   NODE_PATH=/tmp/jstk/node_modules node scripts/make_bpe_fixtures.js > tests/fixtures/bpe/cases.json
//
// Strings stick to characters assigned by Unicode 14 (the version our letter/number tables come
// from, see scripts/gen_unicode_tables.py), so that the two agree on every character used here.
'use strict';

const { getEncoding } = require('js-tiktoken');
// The package's "exports" hide its package.json; find it next to the resolved entry point.
const fs = require('fs');
const path = require('path');
function packageVersion(name) {
  for (let dir = path.dirname(require.resolve(name)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (pkg.name === name) return pkg.version;
    }
  }
  return 'unknown';
}
const tiktokenVersion = packageVersion('js-tiktoken');

const paragraph =
  'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary ' +
  'election produced "no evidence" that any irregularities took place. The jury further said ' +
  'in term-end presentments that the City Executive Committee, which had over-all charge of the ' +
  'election, "deserves the praise and thanks of the City of Atlanta" for the manner in which ' +
  'the election was conducted.\n\nIt recommended that Fulton legislators act "to have these laws ' +
  'studied and revised to the end of modernizing and improving them" -- at a cost of $1,250,000 ' +
  '(about 3.5% of the budget); they\'ll vote on Nov. 8th, 1962.  Mr. O\'Brien didn\'t comment.\n';

const cases = [
  ['empty', ''],
  ['single letter', 'a'],
  ['hello world', 'Hello world'],
  ['leading space', ' hello'],
  ['two spaces between words', 'hello  world'],
  ['many spaces between words', 'a          b'],
  ['trailing space', 'hello '],
  ['trailing spaces', 'hello   '],
  ['only spaces', '     '],
  ['tab', 'a\tb'],
  ['tabs and spaces', '\t \t  x \t'],
  ['newline', 'line one\nline two'],
  ['blank lines', 'para one\n\n\npara two'],
  ['triple newline only', '\n\n\n'],
  ['newline then space', 'a\n b'],
  ['space then newline', 'a \nb'],
  ['crlf', 'windows\r\nline\r\n'],
  ['trailing newline', 'end.\n'],
  ['contraction I\'m', 'I\'m here'],
  ['contraction they\'ll', 'they\'ll go'],
  ['contraction \'s', '\'s'],
  ['contractions all', 'it\'s can\'t we\'re you\'ve I\'m we\'ll he\'d'],
  ['don\'t', 'don\'t'],
  ['uppercase DON\'T', 'DON\'T STOP'],
  ['uppercase \'S', 'JOHN\'S'],
  ['apostrophe runs', '\'\'s \'\'\' rock\'n\'roll \'tis'],
  ['quotes', '"quoted" and \'single\''],
  ['digits', '12345'],
  ['long digits', '3141592653589793238462643383279'],
  ['decimal', '3.14'],
  ['thousands', '1,000'],
  ['money', '$1,250,000.00 and 50%'],
  ['digits and letters', 'abc123def 4th 2nd'],
  ['date', '2024-05-20T12:34:56Z'],
  ['punctuation run', '!!!???...'],
  ['punctuation mix', 'a--b; c: (d) [e] {f} <g> @h #i'],
  ['ellipsis and dashes', 'wait... what?! -- no---yes'],
  ['code', 'for (int i = 0; i < n; ++i) { x[i] += 1; }\n'],
  ['url', 'https://example.com/path?q=1&r=two#frag'],
  ['email', 'someone@example.org'],
  ['repeated letter', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
  ['repeated equals', '================================'],
  ['repeated exclamation', '!!!!!!!!!!!!!!!!!!!!'],
  ['repeated ones', '1111111111111111111111111111111111111'],
  ['long space run', ' '.repeat(64) + 'x'],
  ['e acute', 'café résumé naïve'],
  ['u umlaut', 'über Müller Straße'],
  ['combining acute', 'cafe\u0301'],
  ['chinese', '中文分词测试，你好世界。'],
  ['japanese', 'こんにちは、世界！カタカナ'],
  ['korean', '안녕하세요 세계'],
  ['cyrillic', 'Привет, мир!'],
  ['greek', 'Γειά σου Κόσμε'],
  ['arabic', 'مرحبا بالعالم'],
  ['hindi', 'नमस्ते दुनिया'],
  ['emoji', 'I love 🍕 and 🎉🎉!'],
  ['emoji zwj', 'family: 👨‍👩‍👧 flag: 🇩🇪'],
  ['non-ascii digits', 'Arabic-Indic ٣٤٥ and Roman Ⅻ and ½'],
  ['no-break space', 'a\u00a0b \u00a0c'],
  ['ideographic space', 'x\u3000y'],
  ['thin space', '1\u2009000'],
  ['line separator', 'a\u2028b'],
  ['byte order mark', '\ufeffBOM'],
  ['next line U+0085', 'a\u0085b'],
  ['zero width space', 'a\u200bb'],
  ['control chars', 'a\u0001b\u007fc'],
  ['special text stays text', 'one<|endoftext|>two'],
  ['mixed', 'Mixed: naïve café, 42 items — “smart quotes” & ‘apostrophes’ isn\'t it?\n\tDone.'],
  ['long paragraph', paragraph],
];

const enc = getEncoding('gpt2');
const header = {
  generator: 'scripts/make_bpe_fixtures.js',
  reference: `js-tiktoken ${tiktokenVersion}, getEncoding("gpt2"), special tokens treated as text`,
};
// One case per line keeps the file readable and its diffs small.
const lines = cases.map(([name, text]) => '  ' + JSON.stringify({ name, text, ids: enc.encode(text, [], []) }));
process.stdout.write(JSON.stringify(header, null, 1).replace(/\n}$/, ',\n "cases": [\n') + lines.join(',\n') + '\n ]\n}\n');
