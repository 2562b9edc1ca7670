// Chat templates: the checkpoint's Jinja template from tokenizer_config.json (string or named list,
// AddedToken bos/eos), the documented default without one, and a clear error for a broken template.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatTemplate } from '../../src/serve/chat-template.js';
import { removeDir, tempDir } from '../reference/harness.js';

const root = tempDir('moesaic-chat-');
after(() => removeDir(root));

function folder(name: string, config?: object): string {
  const dir = join(root, name);
  mkdirSync(dir);
  if (config) writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

const messages = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
];

test('the template of tokenizer_config.json, with bos_token as an AddedToken object', () => {
  const t = ChatTemplate.load(
    folder('zephyr', {
      bos_token: { content: '<s>' },
      eos_token: '</s>',
      chat_template: "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}",
    }),
  );
  assert.equal(t.source, 'tokenizer_config.json');
  assert.equal(t.render(messages), '<s>[system] Be brief.</s>[user] Hi</s>[assistant] ');
});

test('a list of named templates: "default" is used', () => {
  const t = ChatTemplate.load(folder('named', { chat_template: [{ name: 'tool_use', template: 'TOOLS' }, { name: 'default', template: '{{ messages[0].content }}!' }] }));
  assert.equal(t.render(messages), 'Be brief.!');
});

test('no template (or no tokenizer_config.json): the documented default', () => {
  const expected = '<s><|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n';
  const t = ChatTemplate.load(folder('plain', { bos_token: '<s>' }));
  assert.equal(t.source, 'default');
  assert.equal(t.render(messages), expected);
  assert.equal(ChatTemplate.load(folder('none')).render(messages), expected.slice(3));
});

test('a template that does not parse is a clear checkpoint error', () => {
  assert.throws(() => ChatTemplate.load(folder('broken', { chat_template: '{% for m in messages %}' })), /chat_template does not parse/);
  assert.throws(() => ChatTemplate.load(folder('wrong-type', { chat_template: 42 })), /chat_template must be a string or a list/);
});
