// The official OpenAI client (npm "openai") against `ocellus serve`: a completion with a
// base64 PNG, the same streamed, the model list, and errors as the client's typed errors.
// Environment: OCELLUS_BASE_URL (http://127.0.0.1:PORT/v1), OCELLUS_API_KEY, OCELLUS_CASES
// (JSON: [{"image": path, "caption": text}]), set by openai_test.py.
import fs from 'node:fs';
import OpenAI from 'openai';

const baseURL = process.env.OCELLUS_BASE_URL;
const client = new OpenAI({ baseURL, apiKey: process.env.OCELLUS_API_KEY, maxRetries: 0 });
const cases = JSON.parse(process.env.OCELLUS_CASES);
let passed = 0, failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack || e}`);
  }
}

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

function describe(path) {
  const b64 = fs.readFileSync(path).toString('base64');
  return [{ role: 'user', content: [
    { type: 'image_url', image_url: { url: `data:image/png;base64,${b64}` } },
    { type: 'text', text: 'Describe this image.' }] }];
}

await check('models.list', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  expect(JSON.stringify(ids) === '["ocellus-shapes"]', `models: ${JSON.stringify(ids)}`);
});

for (const c of cases) {
  await check(`chat.completions.create ${c.image}`, async () => {
    const r = await client.chat.completions.create({
      model: 'ocellus-shapes', messages: describe(c.image), temperature: 0 });
    expect(r.object === 'chat.completion', `object ${r.object}`);
    expect(r.choices[0].message.content === c.caption,
           `"${r.choices[0].message.content}" != "${c.caption}"`);
    expect(r.choices[0].finish_reason === 'stop', `finish ${r.choices[0].finish_reason}`);
    expect(r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, 'usage');
  });
  await check(`stream ${c.image}`, async () => {
    const s = await client.chat.completions.create({
      model: 'ocellus-shapes', messages: describe(c.image), temperature: 0, stream: true,
      stream_options: { include_usage: true } });
    let text = '', finish = null, usage = null;
    for await (const chunk of s) {
      if (chunk.usage) usage = chunk.usage;
      for (const ch of chunk.choices) {
        text += ch.delta.content || '';
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    expect(text === c.caption, `"${text}" != "${c.caption}"`);
    expect(finish === 'stop', `finish ${finish}`);
    expect(usage && usage.completion_tokens > 0, `usage ${JSON.stringify(usage)}`);
  });
}

await check('stop and max_tokens', async () => {
  const r = await client.chat.completions.create({
    model: 'ocellus-shapes', messages: describe(cases[0].image), temperature: 0, max_tokens: 2 });
  expect(r.choices[0].finish_reason === 'length', `finish ${r.choices[0].finish_reason}`);
  expect(r.usage.completion_tokens === 2, `tokens ${r.usage.completion_tokens}`);
});

await check('BadRequestError', async () => {
  try {
    await client.chat.completions.create({ model: 'x', messages: describe(cases[0].image), n: 2 });
    throw new Error('no error');
  } catch (e) {
    expect(e instanceof OpenAI.BadRequestError, `${e}`);
    expect(e.status === 400 && e.error && /must be 1/.test(e.error.message), `${e.status} ${e.message}`);
    expect(e.param === 'n', `param ${e.param}`);
  }
});

await check('AuthenticationError', async () => {
  const bad = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
  try {
    await bad.chat.completions.create({ model: 'x', messages: describe(cases[0].image) });
    throw new Error('no error');
  } catch (e) {
    expect(e instanceof OpenAI.AuthenticationError && e.status === 401, `${e}`);
    expect(e.code === 'invalid_api_key', `code ${e.code}`);
  }
});

await check('NotFoundError', async () => {
  try {
    await client.models.retrieve('gpt-4o');
    throw new Error('no error');
  } catch (e) {
    expect(e instanceof OpenAI.NotFoundError && e.status === 404, `${e}`);
  }
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
