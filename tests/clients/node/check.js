// Drives node-postgres (npm `pg`) through the emulator's proxy.
//
// Usage: node check.js postgresql://user@host:port/db [check ...]
//
// Each check runs on clients of its own, so one failure does not hide the others, and under a
// deadline, so a proxy that stalls a reply turns into a FAIL line instead of a hung test. Every
// check prints exactly one line, "OK <name>" or "FAIL <name>: <reason>"; the exit status is 1 if
// any check failed. tests/clients/test_node.py reads these lines, one test per check.
//
// What each check makes node-postgres send:
//   simple_query        a Query message (no parameters: pg uses the simple protocol)
//   parameterized       Parse/Bind/Describe/Execute/Sync with the unnamed statement
//   named_prepared      a named statement parsed once, then only Bind/Execute on reuse
//   transaction         BEGIN / COMMIT and BEGIN / ROLLBACK over the extended protocol
//   listen_notify       a NotificationResponse delivered to an idle client, sent by another one
//   large_values        a 10 MB parameter in one Bind message and a 10 MB value back in one
//                       DataRow, then 200,000 rows in one result
//   error_recovery      errors in both protocols (and inside a transaction), then the same client
//                       used again

'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Client } = require('pg');

const DEADLINE_MS = 30000;

const dsn = process.argv[2];
if (!dsn) {
  console.error('usage: node check.js DSN [check ...]');
  process.exit(2);
}

async function connect() {
  const client = new Client({ connectionString: dsn, connectionTimeoutMillis: 10000 });
  // An 'error' event with no listener would crash the process instead of failing one check.
  client.on('error', (err) => console.error('client error event:', err.message));
  await client.connect();
  return client;
}

async function withClients(count, body) {
  const clients = [];
  try {
    for (let i = 0; i < count; i++) clients.push(await connect());
    await body(...clients);
  } finally {
    await Promise.allSettled(clients.map((c) => c.end()));
  }
}

function sqlstateOf(promise) {
  return promise.then(
    () => { throw new Error('expected an error, the statement succeeded'); },
    (err) => {
      if (!err.code) throw err;
      return err.code;
    },
  );
}

const checks = {
  async simple_query() {
    await withClients(1, async (c) => {
      const res = await c.query("SELECT 1 AS one, 'héllo'::text AS greeting");
      assert.deepEqual(res.rows, [{ one: 1, greeting: 'héllo' }]);
      // Several statements in one Query message: one result per statement.
      const multi = await c.query('SELECT 1 AS a; SELECT 2 AS b');
      assert.equal(multi.length, 2);
      assert.deepEqual(multi[1].rows, [{ b: 2 }]);
    });
  },

  async parameterized() {
    await withClients(1, async (c) => {
      const res = await c.query('SELECT $1::int + 1 AS n, $2::text AS t, $3::jsonb AS j',
        [41, 'naïve', { k: [1, 2] }]);
      assert.deepEqual(res.rows, [{ n: 42, t: 'naïve', j: { k: [1, 2] } }]);
      const nulls = await c.query('SELECT $1::text IS NULL AS is_null', [null]);
      assert.equal(nulls.rows[0].is_null, true);
    });
  },

  async named_prepared() {
    await withClients(1, async (c) => {
      const query = (i) => ({
        name: 'check_square',
        text: 'SELECT $1::int * $1::int AS sq',
        values: [i],
      });
      for (let i = 0; i < 10; i++) {
        const res = await c.query(query(i));
        assert.equal(res.rows[0].sq, i * i);
      }
      const res = await c.query(
        "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'check_square'");
      assert.equal(res.rows[0].n, 1, 'the named statement is not prepared on the server');
    });
  },

  async transaction() {
    await withClients(1, async (c) => {
      await c.query('CREATE TEMP TABLE tx_items (id int)');
      await c.query('BEGIN');
      await c.query('INSERT INTO tx_items VALUES ($1), ($2)', [1, 2]);
      await c.query('COMMIT');
      await c.query('BEGIN');
      await c.query('INSERT INTO tx_items VALUES ($1)', [3]);
      const inside = await c.query('SELECT count(*)::int AS n FROM tx_items');
      assert.equal(inside.rows[0].n, 3);
      await c.query('ROLLBACK');
      const after = await c.query('SELECT array_agg(id ORDER BY id) AS ids FROM tx_items');
      assert.deepEqual(after.rows[0].ids, [1, 2]);
    });
  },

  async listen_notify() {
    await withClients(2, async (listener, notifier) => {
      const received = [];
      let wake;
      const gotTwo = new Promise((resolve) => { wake = resolve; });
      listener.on('notification', (msg) => {
        received.push({ channel: msg.channel, payload: msg.payload });
        if (received.length === 2) wake();
      });
      await listener.query('LISTEN check_channel');
      // The listener now sits idle: the notifications reach it only if the proxy relays
      // server messages that answer no request of the client.
      await notifier.query("NOTIFY check_channel, 'first'");
      await notifier.query("SELECT pg_notify('check_channel', $1)", ['second ✓']);
      await gotTwo;
      assert.deepEqual(received, [
        { channel: 'check_channel', payload: 'first' },
        { channel: 'check_channel', payload: 'second ✓' },
      ]);
    });
  },

  async large_values() {
    await withClients(1, async (c) => {
      const big = crypto.randomBytes(5 * 1024 * 1024).toString('hex');  // 10 MB of text
      const digest = crypto.createHash('md5').update(big).digest('hex');
      const res = await c.query('SELECT md5($1::text) AS md5, $1::text AS echo', [big]);
      assert.equal(res.rows[0].md5, digest, 'the server received a different parameter');
      assert.ok(res.rows[0].echo === big, 'the value came back different');

      const many = await c.query(
        "SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 200000) AS g");
      assert.equal(many.rows.length, 200000);
      assert.equal(many.rows[199999].g, 200000);
      assert.equal(many.rows.reduce((sum, r) => sum + r.g, 0), 200000 * 200001 / 2);
    });
  },

  async error_recovery() {
    await withClients(1, async (c) => {
      assert.equal(await sqlstateOf(c.query('SELECT 1/0')), '22012');
      assert.equal((await c.query('SELECT 1 AS ok')).rows[0].ok, 1);

      assert.equal(await sqlstateOf(c.query('SELECT $1::int', ['not a number'])), '22P02');
      assert.equal((await c.query('SELECT $1::int AS ok', [2])).rows[0].ok, 2);

      assert.equal(await sqlstateOf(c.query({ name: 'broken', text: 'SELECT nope FROM nowhere' })),
        '42P01');
      assert.equal((await c.query({ name: 'fine', text: 'SELECT 3 AS ok' })).rows[0].ok, 3);

      await c.query('BEGIN');
      assert.equal(await sqlstateOf(c.query('SELECT 1/0')), '22012');
      assert.equal(await sqlstateOf(c.query('SELECT 1')), '25P02');
      await c.query('ROLLBACK');
      assert.equal((await c.query('SELECT 4 AS ok')).rows[0].ok, 4);
    });
  },
};

function withDeadline(name, promise) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

async function main() {
  const wanted = process.argv.slice(3);
  const unknown = wanted.filter((name) => !(name in checks));
  if (unknown.length) {
    console.error(`unknown checks: ${unknown.join(', ')}`);
    process.exit(2);
  }
  let failures = 0;
  for (const [name, check] of Object.entries(checks)) {
    if (wanted.length && !wanted.includes(name)) continue;
    try {
      await withDeadline(name, check());
      console.log(`OK ${name}`);
    } catch (err) {
      failures++;
      console.log(`FAIL ${name}: ${String(err && err.message).replace(/\n/g, ' ')}`);
      console.error(err);
    }
  }
  // A client left hanging by a failed check must not keep the process alive.
  process.exit(failures === 0 ? 0 : 1);
}

main();
