// gen-model's config.json writer: floats in Python's form, the rest as JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pythonFloat, pythonJson } from '../../src/gen/python-json.js';

test('pythonFloat gives what CPython repr() gives', () => {
  // [value, repr(value) printed by CPython 3]
  const cases: Array<[number, string]> = [
    [0, '0.0'], [1e-5, '1e-05'], [1e-6, '1e-06'], [10000, '10000.0'], [1e6, '1000000.0'], [0.02, '0.02'],
    [0.001, '0.001'], [1e-4, '0.0001'], [0.00012, '0.00012'], [1e16, '1e+16'], [1.5e16, '1.5e+16'],
    [123456789012345680, '1.2345678901234568e+17'], [2.5, '2.5'], [-3, '-3.0'], [-0, '-0.0'], [1e-300, '1e-300'],
    [5e-324, '5e-324'], [1.7976931348623157e308, '1.7976931348623157e+308'], [0.1 + 0.2, '0.30000000000000004'],
  ];
  for (const [x, want] of cases) assert.equal(pythonFloat(x), want, String(x));
  assert.throws(() => pythonFloat(NaN), /NaN/);
});

test('pythonJson: indent 2 like json.dumps, floats only under the named keys, parses back to the same value', () => {
  const v = { a: 0, b: 0, list: [1, 2], empty: [], nested: { b: 3 }, s: 'x"y', n: null, skip: undefined };
  const text = pythonJson(v, new Set(['b']));
  assert.equal(text, '{\n  "a": 0,\n  "b": 0.0,\n  "list": [\n    1,\n    2\n  ],\n  "empty": [],\n  "nested": {\n    "b": 3.0\n  },\n  "s": "x\\"y",\n  "n": null\n}');
  const { skip: _skip, ...rest } = v;
  assert.deepEqual(JSON.parse(text), rest);
});
