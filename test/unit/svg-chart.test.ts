import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barChartSvg, esc, heatmapSvg, lineChartSvg, niceTicks } from '../../src/analysis/svg-chart.js';

/**
 * A minimal XML well-formedness check (enough for the charts: no comments, CDATA or DOCTYPE): tags nest
 * and close, no attribute repeats within a tag, every '&' starts an entity, no '<' or '>' in text.
 */
function assertWellFormed(svg: string): void {
  const body = svg.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = tag.exec(body)) !== null) {
    const between = body.slice(last, m.index);
    assert.ok(!/[<>]/.test(between), `stray markup before offset ${m.index}: ${between.slice(0, 60)}`);
    assert.ok(!/&(?!(amp|lt|gt|quot|#39);)/.test(between), `unescaped & in text: ${between}`);
    const names = [...m[3]!.matchAll(/([\w:-]+)="/g)].map((a) => a[1]);
    assert.equal(new Set(names).size, names.length, `repeated attribute in ${m[0]}`);
    assert.ok(!/&(?!(amp|lt|gt|quot|#39);)/.test(m[3]!), `unescaped & in attributes of ${m[0]}`);
    if (m[1] === '/') assert.equal(stack.pop(), m[2], `mismatched </${m[2]}>`);
    else if (m[4] !== '/') stack.push(m[2]!);
    last = tag.lastIndex;
  }
  assert.equal(body.slice(last).trim(), '', 'text after the root element');
  assert.deepEqual(stack, [], 'unclosed elements');
  assert.ok(body.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), 'root is an svg element');
}

/** The points of a path's d attribute (M/L commands only). */
function pathPoints(d: string): Array<[number, number]> {
  return [...d.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

test('esc escapes the five XML specials', () => {
  assert.equal(esc(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&#39;');
});

test('niceTicks picks 1/2/5 steps covering the range', () => {
  assert.deepEqual(niceTicks(0, 0.93).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 47).ticks, [0, 10, 20, 30, 40, 50]);
  // a flat range is widened rather than dividing by zero
  const flat = niceTicks(5, 5);
  assert.ok(flat.lo < 5 && flat.hi > 5);
});

test('line chart: one path per series in order, escaped names, value -> pixel monotone', () => {
  const svg = lineChartSvg({
    title: 'miss rate <lifo & lru>',
    xLabel: 'slots',
    yLabel: 'miss "rate"',
    series: [
      { name: 'a<b', points: [[0, 0], [5, 0.5], [10, 1]] },
      { name: 'c&d', points: [[0, 1], [10, 0]] },
      { name: 'e', points: [[2, 0.25]] },
    ],
  });
  assertWellFormed(svg);
  const paths = [...svg.matchAll(/<path class="series" data-name="([^"]*)" d="([^"]*)"/g)];
  assert.equal(paths.length, 3);
  assert.deepEqual(paths.map((p) => p[1]), ['a&lt;b', 'c&amp;d', 'e']);
  assert.ok(svg.includes('miss rate &lt;lifo &amp; lru&gt;'));
  assert.ok(!svg.includes('<lifo'));
  // three distinct stroke colours
  const strokes = [...svg.matchAll(/<path class="series"[^>]*stroke="([^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(strokes).size, 3);
  const p = pathPoints(paths[0]![2]!);
  assert.equal(p.length, 3);
  // linear axis: the middle point is halfway in x and y; larger y is higher on screen (smaller pixel y)
  assert.ok(Math.abs(p[1]![0] - (p[0]![0] + p[2]![0]) / 2) < 0.02);
  assert.ok(Math.abs(p[1]![1] - (p[0]![1] + p[2]![1]) / 2) < 0.02);
  assert.ok(p[2]![1] < p[0]![1]);
  // the second series starts where the first ends in height (y = 1) and ends where it starts (y = 0)
  const q = pathPoints(paths[1]![2]!);
  assert.ok(Math.abs(q[0]![1] - p[2]![1]) < 0.02 && Math.abs(q[1]![1] - p[0]![1]) < 0.02);
  // legend: one text per series name
  assert.ok(svg.includes('>a&lt;b</text>') && svg.includes('>c&amp;d</text>'));
});

test('line chart with logX spaces decades equally and skips x <= 0', () => {
  const svg = lineChartSvg({
    title: 't',
    xLabel: 'x',
    yLabel: 'y',
    logX: true,
    series: [{ name: 's', points: [[0, 5], [1, 1], [10, 2], [100, 3], [NaN, 1]] }],
  });
  assertWellFormed(svg);
  const d = /<path class="series"[^>]*d="([^"]*)"/.exec(svg)![1]!;
  const p = pathPoints(d);
  assert.equal(p.length, 3, 'x = 0 and NaN are not placeable on a log axis');
  assert.ok(Math.abs(p[1]![0] - p[0]![0] - (p[2]![0] - p[1]![0])) < 0.02);
  assert.ok(svg.includes('(log scale)'));
});

test('bar chart: one bar per label, heights proportional to values', () => {
  const svg = barChartSvg({ title: 'inactive', xLabel: 'layer', yLabel: 'experts', labels: ['0', '1', '<2>'], values: [1, 2, 4] });
  assertWellFormed(svg);
  const heights = [...svg.matchAll(/<rect class="bar"[^>]*height="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.equal(heights.length, 3);
  assert.ok(Math.abs(heights[1]! / heights[0]! - 2) < 0.01);
  assert.ok(Math.abs(heights[2]! / heights[0]! - 4) < 0.01);
  assert.ok(svg.includes('>&lt;2&gt;</text>'));
});

test('heatmap: one cell per finite value, extremes at the ends of the colour scale', () => {
  const svg = heatmapSvg({
    title: 'pop',
    xLabel: 'expert',
    yLabel: 'layer',
    rows: [
      [0.1, 0.5, NaN],
      [0.9, 0.3, 0.2],
    ],
    rowLabels: ['L&0', 'L1'],
  });
  assertWellFormed(svg);
  const cells = [...svg.matchAll(/<rect class="cell"[^>]*fill="([^"]+)"><title>([^<]*)<\/title>/g)];
  assert.equal(cells.length, 5);
  const fillOf = (t: string) => cells.find((c) => c[2] === t)![1];
  assert.equal(fillOf('L1, 0: 0.9'), 'rgb(8,48,107)');
  assert.equal(fillOf('L&amp;0, 0: 0.1'), 'rgb(247,251,255)');
  // 0.5 is exactly halfway between 0.1 and 0.9
  assert.equal(fillOf('L&amp;0, 1: 0.5'), `rgb(${Math.round(247 + (8 - 247) / 2)},${Math.round(251 + (48 - 251) / 2)},${Math.round(255 + (107 - 255) / 2)})`);
});
