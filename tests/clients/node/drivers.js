// node-postgres driver transcript for 160-drivers.bats: the same straight to the
// database and through pgtether. Usage: node drivers.js HOST PORT KILL_SCRIPT
'use strict';
const crypto = require('crypto');
const { execFileSync } = require('child_process');
const { Client } = require('pg');
const { from: copyFrom, to: copyTo } = require('pg-copy-streams');
const { pipeline } = require('stream/promises');
const { Readable, Writable } = require('stream');

const [host, port, kill] = process.argv.slice(2);
const cfg = { host, port: Number(port), user: 'app', database: 'postgres', connectionTimeoutMillis: 10000 };
const say = (...a) => console.log(a.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' '));
const code = (e) => (e.code && /^[0-9A-Z]{5}$/.test(e.code) ? `${e.code} ${e.message}` : 'connection lost');
const md5 = (b) => crypto.createHash('md5').update(b).digest('hex');

async function connect() {
  const c = new Client(cfg);
  c.on('error', () => {}); // a backend ended under us: the next query says so
  await c.connect();
  return c;
}

async function main() {
  let c = await connect();
  say('connected as', (await c.query('select current_user as u')).rows[0].u);
  // startup settings: statement_timeout is a startup parameter, options carries -c
  const sc = new Client({ ...cfg, statement_timeout: 4321, options: '-c search_path=app' });
  await sc.connect();
  const ss = (await sc.query("select current_setting('search_path') as p, current_setting('statement_timeout') as t")).rows[0];
  say('startup settings', ss.p, ss.t);
  await sc.end();
  await c.query('create table app.node (id int primary key, v text, b bytea)');
  // a named statement is prepared once on the server and reused
  for (let i = 0; i < 12; i++) {
    await c.query({ name: 'ins', text: 'insert into app.node values ($1, $2, $3)', values: [i, `v${i}`, Buffer.from([i, 0, 255])] });
  }
  const n = await c.query("select count(*)::int as n from pg_prepared_statements where statement like 'insert into app.node%'");
  say('prepared executions 12, server-side statements', n.rows[0].n);
  const blob = Buffer.from([...Array(256).keys()]);
  const back = (await c.query('select $1::bytea as b', [blob])).rows[0].b;
  say('bytea', back.length, md5(back));
  // binary results, read raw
  const bin = await c.query({ text: 'select 9007199254740993::int8 as a, 1.5e300::float8 as b, $1::bytea as c', values: [blob], binary: true });
  const r = bin.rows[0];
  say('binary', String(r.a), String(r.b), Buffer.isBuffer(r.c) ? md5(r.c) : typeof r.c);
  const v = (await c.query("select 12345.678901234567890::numeric as n, '2024-02-29 12:34:56.789+00'::timestamptz as t")).rows[0];
  say('values', v.n, v.t.toISOString());

  const lines = [];
  for (let i = 100; i < 1100; i++) lines.push(`${i}\tcopied ${i}\n`);
  const sink = c.query(copyFrom('copy app.node (id, v) from stdin'));
  await pipeline(Readable.from(lines), sink);
  say('copied in', sink.rowCount);
  const chunks = [];
  await pipeline(
    c.query(copyTo('copy (select id, v from app.node order by id) to stdout')),
    new Writable({ write(chunk, _e, cb) { chunks.push(chunk); cb(); } }),
  );
  const all = Buffer.concat(chunks);
  say('copied out bytes', all.length, md5(all));

  const l = await connect();
  const got = new Promise((resolve) => l.on('notification', resolve));
  await l.query('listen chan');
  await c.query("notify chan, 'payload from node'");
  const m = await got;
  say('notification', m.channel, m.payload);
  await l.end();

  for (const q of ['select 1/0', 'select * from nowhere', "insert into app.node values (1, 'dup')"]) {
    try {
      await c.query(q);
      say('error none');
    } catch (e) {
      say('error', code(e));
    }
  }
  await c.query('drop table app.node');

  const pid = (await c.query('select pg_backend_pid() as p')).rows[0].p;
  const out = execFileSync(kill, [String(pid)]).toString().trim();
  say('terminated', out, true);
  try {
    await c.query('select 1');
    say('after terminate no error');
  } catch (e) {
    say('after terminate', code(e));
  }
  await c.end().catch(() => {});
  c = await connect();
  say('reconnected', (await c.query('select 42 as n')).rows[0].n);
  await c.end();
}

main().catch((e) => {
  console.error('FAILED', e);
  process.exit(1);
});
