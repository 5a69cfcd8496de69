import test from 'ava';
import { Operation } from './openapi.js';

// The simulator's checks must be able to fail: these pin that they see a contract fault,
// and that the spec's own examples pass them (so the $ref resolution is whole).
const create = new Operation('resources/droplets/droplets_create.yml');
const list = new Operation('resources/droplets/droplets_list.yml');
const headers = { 'ratelimit-limit': '5000', 'ratelimit-remaining': '4999', 'ratelimit-reset': '1444931833' };

test('the spec\'s own examples pass the checks', (t) => {
  t.deepEqual(create.checkResponse(202, headers, create.example('202', 'Single Droplet Create Response')), []);
  t.deepEqual(list.checkResponse(200, headers, list.example('200', 'All Droplets')), []);
});

test('a request the spec does not allow is caught, each fault named', (t) => {
  const found = create.checkRequest({ path: {}, query: new URLSearchParams('force=1'), body: { name: 'bad name!', image: 'x', tags: 'web' }, contentType: 'application/json' });
  t.true(found.some((p) => /query parameter "force" is not in the spec/.test(p)));
  t.true(found.some((p) => /request body\/name must match pattern/.test(p)));
  t.true(found.some((p) => /must have required property 'size'/.test(p)));
  t.true(found.some((p) => /request body\/tags must be array/.test(p)));
  t.deepEqual(list.checkRequest({ path: {}, query: new URLSearchParams('per_page=300'), body: undefined, contentType: undefined }).length > 0, true, 'per_page above 200');
});

test('a response the spec does not allow is caught', (t) => {
  t.true(create.checkResponse(202, {}, { droplet: { id: 'x' } }).some((p) => /header ratelimit-limit is missing/.test(p)));
  t.true(create.checkResponse(202, headers, { droplet: { id: 'x' }, links: {} }).some((p) => /droplet\/id must be integer/.test(p)));
  t.true(create.checkResponse(202, { ...headers, 'ratelimit-remaining': 'many' }, create.example('202', 'Single Droplet Create Response')).some((p) => /ratelimit-remaining must be integer/.test(p)));
  t.true(list.checkResponse(418, headers, { id: 'teapot' }).length > 0, 'default is an error body, which needs a message');
});
