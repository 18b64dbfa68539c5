// node-postgres compatibility cases; prints a transcript that must be the same
// straight to the database and through pgtether. Usage: node check.js HOST PORT
'use strict';
const { Client } = require('pg');
const { from: copyFrom, to: copyTo } = require('pg-copy-streams');
const Cursor = require('pg-cursor');
const { pipeline } = require('stream/promises');
const { Readable, Writable } = require('stream');

const [host, port] = process.argv.slice(2);
const cfg = { host, port: Number(port), user: 'app', database: 'postgres', connectionTimeoutMillis: 5000 };
const out = [];
const say = (...a) => out.push(a.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' '));

async function main() {
  const c = new Client(cfg);
  c.on('notice', (n) => say('notice', n.severity, n.message));
  await c.connect();
  await c.query('create table app.js (id int primary key, v text)');

  // named prepared statements
  for (let i = 0; i < 3; i++) {
    await c.query({ name: 'ins', text: 'insert into app.js values ($1, $2)', values: [i, `v${i}`] });
  }
  say('rows', (await c.query('select count(*)::int as n from app.js')).rows[0].n);

  // COPY both ways
  const lines = [];
  for (let i = 10; i < 1010; i++) lines.push(`${i}\tcopied ${i}\n`);
  await pipeline(Readable.from(lines), c.query(copyFrom('copy app.js from stdin')));
  let bytes = 0;
  let nl = 0;
  await pipeline(
    c.query(copyTo('copy (select * from app.js order by id) to stdout')),
    new Writable({
      write(chunk, _enc, cb) {
        bytes += chunk.length;
        for (const b of chunk) if (b === 10) nl++;
        cb();
      },
    }),
  );
  say('copied out bytes', bytes, 'lines', nl);

  // cursor
  const cur = c.query(new Cursor('select g from generate_series(1, 7) g'));
  const seen = [];
  for (;;) {
    const rows = await cur.read(3);
    if (rows.length === 0) break;
    seen.push(rows.map((r) => r.g));
  }
  await cur.close();
  say('cursor', seen);

  // errors
  for (const sql of ['select * from nowhere', 'select 1/0']) {
    try {
      await c.query(sql);
    } catch (e) {
      say('error', e.code, e.message);
    }
  }
  await c.query("do $$ begin raise notice 'hello from %', 'node'; end $$");

  // LISTEN / NOTIFY between two connections
  const l = new Client(cfg);
  await l.connect();
  const got = new Promise((resolve) => l.on('notification', (m) => resolve(m)));
  await l.query('listen chan');
  await c.query("notify chan, 'payload from node'");
  const m = await got;
  say('notification', m.channel, m.payload);
  await l.end();

  await c.query('drop table app.js');
  await c.end();
}

main().then(
  () => console.log(out.join('\n')),
  (e) => {
    console.log(out.join('\n'));
    console.error('FAILED', e);
    process.exit(1);
  },
);
