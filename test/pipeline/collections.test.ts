import { describe, expect, test } from 'bun:test';

import { parseRecord } from '../../src/pipeline/collections.ts';

const TIME = '2025-01-01T00:00:00.000Z';
const post = (fields: Record<string, unknown> = {}) => ({ $type: 'app.bsky.feed.post', text: 'hello', createdAt: TIME, ...fields });

describe('parseRecord: valid records become rows, anything else a reason', () => {
  const cases: [string, string, string, unknown, string][] = [
    ['a post', 'app.bsky.feed.post', '3kaaaaaaaaa22', post(), 'ok'],
    ['a post with languages and tags', 'app.bsky.feed.post', '3kaaaaaaaaa22', post({ langs: ['en'], tags: ['t'] }), 'ok'],
    ['U+0000 in the text', 'app.bsky.feed.post', '3kaaaaaaaaa22', post({ text: 'a\u0000b' }), 'nul-character'],
    ['U+0000 in a self-label', 'app.bsky.feed.post', '3kaaaaaaaaa22', post({ labels: { $type: 'com.atproto.label.defs#selfLabels', values: [{ val: 'a\u0000' }] } }), 'nul-character'],
    ['U+0000 in a tag', 'app.bsky.feed.post', '3kaaaaaaaaa22', post({ tags: ['\u0000'] }), 'nul-character'],
    ['U+0000 inside a stored JSON document', 'app.bsky.actor.profile', 'self', { $type: 'app.bsky.actor.profile', displayName: 'a\u0000' }, 'nul-character'],
    ['a profile', 'app.bsky.actor.profile', 'self', { $type: 'app.bsky.actor.profile', displayName: 'a' }, 'ok'],
    ['a post missing its text', 'app.bsky.feed.post', '3kaaaaaaaaa22', { $type: 'app.bsky.feed.post', createdAt: TIME }, 'lexicon'],
    ['a profile under another record key', 'app.bsky.actor.profile', 'other', { $type: 'app.bsky.actor.profile' }, 'bad-rkey'],
    ['a datetime past year 9999', 'app.bsky.feed.post', '3kaaaaaaaaa22', post({ createdAt: '10000-01-01T00:00:00Z' }), 'lexicon'],
  ];
  test.each(cases)('%s', (_name, collection, rkey, record, expected) => {
    const parsed = parseRecord(collection, rkey, record);
    expect(parsed === null ? 'null' : parsed.ok ? 'ok' : parsed.reason).toBe(expected);
  });

  test('an unknown collection is null', () => {
    expect(parseRecord('com.example.thing', 'a', {})).toBeNull();
  });
});
